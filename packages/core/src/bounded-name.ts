import { createHash } from 'node:crypto';

/**
 * `text` if it has at most `max` characters; otherwise its first characters, `-`, and 10 hex
 * characters of its SHA-256, `max` characters in all. Names KLB derives from user names (upstreams,
 * appliance objects, tags) use it, so that a valid user name never makes an invalid derived name,
 * and two long names that share a prefix never make the same one.
 */
export function boundedName(text: string, max: number): string {
  if (text.length <= max) return text;
  const digest = createHash('sha256').update(text).digest('hex').slice(0, 10);
  return `${text.slice(0, Math.max(0, max - digest.length - 1)).replace(/[-._]+$/, '')}-${digest}`;
}
