export * from './errors.js';
export {
  IMG_COMMON_MAGIC, IMG_SERVICE_MAGIC, RAW_IMAGE_MAGIC, MAGICS, RAW_KINDS,
  magicByName, magicByValue, magicHeader,
  type MagicInfo, type PayloadKind,
} from './magic.js';
export { getSchema, messageSpec, loadSchema, buildSchema, parseProtoDir, writeSchemaCache, defaultProtoDir, defaultSchemaCache, type Schema, type SchemaJson, type MessageSpec, type FieldSpec } from './schema.js';
export { UNKNOWN_FIELDS, decodeMessage, encodeMessage, compileDecoders, decoderFactoryText, encoderFactoryText } from './codec.js';
export { writePrebuiltDecoders, prebuiltDecodersText, defaultDecodersFile } from './prebuilt-decoders.js';
export { decodeImage, encodeImage, MAX_ENTRY_BYTES, type Entry, type Image, type DecodeOptions } from './framing.js';
export {
  readImageFile, readImageFileSync, openImage, writeImageFile, createImageWriter,
  type ImageStream, type ImageWriter, type OpenImageOptions, type WriteOptions,
} from './io.js';
export { encodeCriuResp, restoredDumpAnswer } from './rpc-messages.js';
export { semPayload, semValues, msgPayload, msgsOfPayload, type QueuedMessage } from './ipc-payload.js';
export { payloadSource, filePayload, isPayloadSource, PAYLOAD_PIECE, type PayloadSource } from './payload.js';
export { readImageColumns, decodeImageColumns, type ImageColumns, type ColumnsOptions } from './columns.js';
export { locateEntries, type LocatedEntry, type LocatedImage, type PayloadSpan } from './locate.js';
export { toCritJson, toCritValue, fromCritJson, encodeCritJson, critJsonChunks, critJsonBytes, writeCritJson, type CritJsonOptions } from './crit-json.js';
export {
  parseJsonExact, parseJsonStrict, parseJson, readImageDocument, JsonCursor, JsonSyntaxError, pyDump, pyDumps, pyString, pyNumber, PyFloat, encodeBytes, jsonNumber, jsonBigint,
  type JsonValue, type ImageDocumentHandler,
} from './pyjson.js';
export { parseImageFileName, imageFileName, openImageDir, type ImageDir, type ImageDirEntry, type ImageFileName } from './image-dir.js';
export { generateTypes, writeTypes, typeName } from './typegen.js';
export * from './vma-status.js';
export * from './facts/index.js';
