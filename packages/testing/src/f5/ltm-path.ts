import { mcpError } from './f5-error.js';

/** An F5 object's location: partition, optional folder (subPath) and name. */
export interface F5FullPath {
  /** The partition, e.g. `Common`. */
  readonly partition: string;
  /** The folder inside the partition, if any. */
  readonly subPath?: string;
  /** The object's name. */
  readonly name: string;
  /** `/Partition[/folder]/name`. */
  readonly fullPath: string;
}

/** Builds `/Partition[/subPath]/name`. */
export function joinFullPath(partition: string, name: string, subPath?: string): string {
  return subPath ? `/${partition}/${subPath}/${name}` : `/${partition}/${name}`;
}

/**
 * Parses a URL path segment: `~Partition~name`, `~Partition~folder~name` or a bare `name`
 * (which lives in `Common`).
 */
export function parseUrlName(segment: string): F5FullPath {
  const decoded = decodeURIComponent(segment);
  if (!decoded.startsWith('~')) return { partition: 'Common', name: decoded, fullPath: `/Common/${decoded}` };
  const parts = decoded.slice(1).split('~');
  if (parts.length < 2 || parts.some((p) => p === ''))
    throw mcpError(400, `01070022:3: The requested name (${decoded}) is invalid.`);
  const partition = parts[0] as string;
  const name = parts[parts.length - 1] as string;
  const subPath = parts.length > 2 ? parts.slice(1, -1).join('/') : undefined;
  return subPath === undefined
    ? { partition, name, fullPath: joinFullPath(partition, name) }
    : { partition, subPath, name, fullPath: joinFullPath(partition, name, subPath) };
}

/** Normalises a reference such as `/Common/tcp` or `tcp` (relative to `partition`) to a full path. */
export function absolutePath(reference: string, partition: string): string {
  return reference.startsWith('/') ? reference : `/${partition}/${reference}`;
}
