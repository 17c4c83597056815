export {
  type BooleanField,
  COMBINATOR_KEYS,
  DEFAULT_SCAN_LIMIT,
  type DurationField,
  defineFieldCatalogue,
  type FieldCatalogue,
  type FieldCatalogueOptions,
  type FieldDefinition,
  type FieldKind,
  type KeywordField,
  type MapField,
  type NumberField,
  type TextField,
} from './catalogue.js';
export { type CompiledFieldFilter, compileFieldFilter, distinctReader, scanned } from './compile.js';
export {
  type FieldMatch,
  type FieldProblem,
  fieldPatterns,
  type Interval,
  type ParseFieldMatchOptions,
  parseFieldMatch,
  re2Problem,
} from './field-match.js';
export {
  type FieldFilterSpec,
  type FilterPath,
  type FilterProblem,
  fieldFilterProblems,
  fieldFilterSchema,
  fieldFilterWarnings,
  unknownFieldMessage,
  validateFieldFilter,
  walkFieldFilter,
} from './filter-schema.js';
export { PACKET_FIELDS, type PacketFilterEvent } from './packet-fields.js';
export {
  CONNECTION_ENDS,
  type ConnectionEnd,
  SOCKET_FIELDS,
  type SocketFilterEvent,
} from './socket-fields.js';
