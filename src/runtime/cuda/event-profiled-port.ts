// Where a cuda step's time goes, on the GPU's own clock: a CudaDevicePort that records a CUDA
// event before and after every launch, copy and cuBLAS call and reads them at the step's end
// (profile(), which the trainer calls at each step's start and end), so the host is never made
// to wait and the GPU runs as in a plain run. Each call is charged its time on the GPU; the gap
// between one call's end and the next one's start is the GPU idle, waiting for the host to
// queue more ("gpu idle"). profiled-port.ts, which waits for every call, measured each kernel
// with its launch latency and sync (~20 µs a call: a 12 µs kernel read 0.07 ms there), and
// could not say whether the GPU or the host bounds a step; this can.
//
// The events cost the host two cuEventRecord calls a device call (a few µs each), so a
// profiled step's host is a little slower than a plain one's and its idle a little larger.
import type { CudaDevicePort, DeviceEvents } from './cuda.ts';
import { portTimedBy, ProfileTotals, type ProfileEntry, type ProfiledPort } from './profiled-port.ts';

const IDLE = 'gpu idle between device calls';

/** Events read (and their handles reused) at least this often: the driver creates one per handle. */
const MAX_PENDING_CALLS = 16_384;

interface Pending {
  readonly name: string;
  readonly kind: ProfileEntry['kind'];
  readonly start: number;
  readonly end: number;
}

/** `events` are inner's (driver.events): recorded in stream order with its calls. */
export function eventProfiledPort(inner: CudaDevicePort, events: DeviceEvents): ProfiledPort {
  const totals = new ProfileTotals();
  const pending: Pending[] = [];

  /** Waits for the GPU, charges every pending call and the idle gaps between them, frees the handles. */
  const read = () => {
    if (pending.length === 0) return;
    inner.synchronize();
    let previousEnd: number | undefined;
    for (const call of pending) {
      totals.charge(call.name, call.kind, events.elapsed(call.start, call.end));
      // Across two readings the gap holds the reading's own wait: only gaps within one count.
      if (previousEnd !== undefined) totals.charge(IDLE, 'idle', Math.max(0, events.elapsed(previousEnd, call.start)), false);
      previousEnd = call.end;
    }
    pending.length = 0;
    events.reset();
  };

  const timed = <T>(name: string, kind: ProfileEntry['kind'], work: () => T): T => {
    const start = events.record();
    const result = work();
    pending.push({ name, kind, start, end: events.record() });
    if (pending.length >= MAX_PENDING_CALLS) read();
    return result;
  };

  return {
    ...portTimedBy(inner, timed),
    method: 'events',
    profile() {
      read();
      return totals.sorted();
    },
  };
}
