export type { X86Cpuinfo, Cpuid } from './types.js';
export {
  WORD, NCAPINTS, NCAPINTS_V1, CAPABILITY_VER, WORDS_OF_VERSION, XFEATURES,
  feature, featureName, featureNames, hasFeature, setFeature, clearFeature, featuresOnlyIn, xfeatureNames,
} from './features.js';
export { probeCpuinfo, hostCpuinfo, type ProbeOptions } from './probe.js';
export { cpuMismatch, INS_FEATURES, INS_MASK, FPU_FEATURES, type CpuMismatch, type CpuRule } from './check.js';
export {
  CPUINFO_IMAGE, CpuinfoErrorCode, cpuinfoEntry, writeCpuinfoImage, imageCpuinfo, validateCpuinfoImage, checkCpuinfoImage, isCpuinfoError,
  type ValidateOptions,
} from './image.js';
