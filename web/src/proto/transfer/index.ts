// The transfer layer (PROTOCOL.md §8): sans-IO sender and receiver machines
// over record plaintexts. Sealing and opening records is the record layer's.

export { ReceiverMachine, MAX_TEXT, DEFAULT_MAX_ENTRIES, STREAM_ENTRY } from './receiver';
export type { ReceiverOptions, ReceiverEvent } from './receiver';
export { SenderMachine, CHUNK_SIZE } from './sender';
export type { SenderOptions, SenderEvent, SendEntry } from './sender';
export {
  DEFAULT_IDLE_TIMEOUT_MS,
  KEEPALIVE_BOUND_MS,
  KEEPALIVE_FLOOR_MS,
  MIN_IDLE_TIMEOUT_MS,
  SILENT_SENDER_TIMEOUT_MS,
  keepAliveIntervalMs,
} from './liveness';
