export { serveConnection, serveSwrk, type ServeOptions, type ServeResult } from './server.js';
export { mapOptions, unsupportedFields, isDefault, isSelfDump, type ConfigReader, type MapContext, type MappedOptions } from './options.js';
export { handleVersion, handleFeatureCheck, handleCheck, handleDump, isOwnAncestor, handleRestore, handleCpuinfo, handleWaitPid, handleUnsupported, handlePreDump, handlePageServer, NotifyRefused, type HandlerContext, type StartPageServer } from './handlers.js';
export { failureFields, firstLogError, EBADRQC } from './failure.js';
export { CriuClient, CriuSession, RpcError, type CriuClientOptions, type NotifyAnswer, type RequestOptions, type Notification, type NotifyHandler, type CriuVersionInfo } from './client.js';
export {
  decodeRequest, decodeResponse, encodeRequest, encodeResponse, typeName,
  type RequestType, type CriuReq, type CriuResp, type CriuOpts, type CriuFeatures, type CriuNotify, type CriuVersion, type CriuDumpResp, type CriuRestoreResp,
} from './protocol.js';
export { listenService, inheritedService, runService, spareChannel, handedConnection, prepareWorker, rehearse, DEFAULT_SERVICE_ADDRESS, type ServiceOptions, type SpareChannel } from './service.js';
export { needsAccessCheck, checkDumpAccess, checkRestoreAccess, checkDirAccess, type Peer } from './access.js';
