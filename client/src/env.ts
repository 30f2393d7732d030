import type { AnalyticsConfig, AnalyticsEnv } from './types';

/** Builds the config from Vite-style env variables; `overrides` win. A missing env is an empty one. */
export function configFromEnv(env?: AnalyticsEnv | null, overrides?: AnalyticsConfig): AnalyticsConfig {
  const vars = env || {};
  const number = (name: string): number | undefined => +(vars[name] as string) || undefined;
  return {
    endpoint: (vars.VITE_ANALYTICS_ENDPOINT as string) || undefined,
    enabled: /^(true|1|yes|on)$/i.test(String(vars.VITE_ENABLE_CSV_ANALYTICS)),
    batchSize: number('VITE_ANALYTICS_BATCH_SIZE'),
    batchTimeout: number('VITE_ANALYTICS_BATCH_TIMEOUT'),
    ...overrides,
  };
}
