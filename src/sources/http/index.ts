export {
  type ClientIpOptions,
  type ClientIpResolver,
  type ClientIpStats,
  createClientIpResolver,
  type ForwardedHeader,
  originalClientAddress,
} from './client-ip.js';
export { type Denial, type DenyResponse, RATE_LIMITED_RESPONSE, writeDenial } from './deny.js';
export { decodeOnce, type HttpEvent, httpEventOf } from './http-event.js';
export { normalizePath, normalizeTarget } from './normalize-path.js';
export {
  createHttpPipeline,
  failJailOf,
  type HttpPipeline,
  type HttpPipelineOptions,
  type HttpPipelineStats,
  pipelineFor,
  type ReportFields,
} from './pipeline.js';
