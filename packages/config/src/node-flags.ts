/**
 * Node's own flags for the worker process, kept here so that every way of starting it (npm
 * start, docker-compose, the bench) passes the same ones.
 *
 * A larger young generation: V8's semi-spaces at 64 MB, not the default 16. The worker allocates
 * fast and keeps each payment's objects a few hundred milliseconds (a PG call, its guard and its
 * step): a larger nursery is scavenged a quarter as often, and fewer of those objects live long
 * enough to be copied again or promoted. `npm run bench -- --only cpu`, alternated on one box:
 * the worker's CPU for the run's 60,000 payments 41.4 and 41.5 s without, 38.0 and 38.0 s with,
 * 40.2 s with it in the sender thread alone (docs/perf.md, "A larger young generation"). It
 * costs memory: up to 96 MB more per thread (two semi-spaces of 64 MB instead of 16). The API
 * showed no gain (15.4–16.1 s either way), so it keeps Node's default.
 */
export const WORKER_SEMI_SPACE_MB = 64;

/** The flags to start the worker's process with (its sender thread gets the same from code). */
export const WORKER_NODE_FLAGS: readonly string[] = [`--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`];

/**
 * The same young generation for a worker thread (`resourceLimits.maxYoungGenerationSizeMb`),
 * which V8 sizes as three semi-spaces (two, and the large-object space beside them).
 */
export const WORKER_YOUNG_GENERATION_MB = 3 * WORKER_SEMI_SPACE_MB;
