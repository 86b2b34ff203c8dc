import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A PEM key pair for the emulator's HTTPS listener. */
export interface SelfSignedCertificate {
  /** PEM certificate (also the CA bundle a client must trust: it is self-signed). */
  readonly cert: string;
  /** PEM private key. */
  readonly key: string;
}

/**
 * Generates a self-signed certificate for `127.0.0.1` and `localhost` (and `ip`, when given) with
 * the `openssl` CLI in `dir`, as a BIG-IP's default management certificate is self-signed.
 */
export function generateSelfSignedCertificate(dir: string, ip?: string): SelfSignedCertificate {
  const keyFile = join(dir, 'mgmt.key');
  const certFile = join(dir, 'mgmt.crt');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=localhost/O=KLB F5 emulator',
      '-addext',
      `subjectAltName=IP:127.0.0.1,DNS:localhost${ip && ip !== '127.0.0.1' ? `,IP:${ip}` : ''}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
}
