/**
 * Runs the simulator (packages/pg-simulator) as a process, configured from the environment: `SIM_PORT` (4010),
 * `SIM_HOST` (127.0.0.1), `SIM_SECRET_KEY` (test_sk_sluice_demo), `SIM_SEED`, `SIM_ADMIN_PORT`,
 * and one `SIM_<KNOB>` per knob (e.g. `SIM_DECLINE_RATE=0.1`, `SIM_OUTAGE=hang`).
 */
import { optionsFromEnv, startSimulator } from '@sluice/pg-simulator';

const sim = await startSimulator(optionsFromEnv(process.env));
// One line, which scripts wait for before they start sending.
console.log(`pg-simulator listening on ${sim.url}`);
if (sim.adminUrl !== null) console.log(`pg-simulator admin on ${sim.adminUrl}`);

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  sim.close().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error('pg-simulator: error while closing', error);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
