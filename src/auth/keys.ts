import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createLocalJWKSet, exportJWK, type JSONWebKeySet, type JWK, type JWTVerifyGetKey } from 'jose';

/** An application's public keys, as the token verifier uses them. */
export interface PublicKeys {
  /** The JWS algorithms the keys are for (some of RS256, ES256 and EdDSA). */
  readonly algorithms: readonly string[];
  /** How many keys were loaded, for the start-up line. */
  readonly count: number;
  /** The key for a token's header; throws JWKSMultipleMatchingKeys, which lists them, when several could be it. */
  readonly keyFor: JWTVerifyGetKey;
}

/** The key file cannot be used; its message is one line for the operator. */
export class KeyFileError extends Error {
  override name = 'KeyFileError';
}

const PEM_BLOCK = /-----BEGIN ([A-Z ]+)-----[\s\S]+?-----END \1-----/g;

/** The algorithm a public key is for, by its type (RFC 7518 §3.1, RFC 8037). */
function algorithmOf(key: KeyObject): string {
  const { asymmetricKeyType: type, asymmetricKeyDetails: details } = key;
  if (type === 'rsa') return 'RS256';
  if (type === 'ec' && details?.namedCurve === 'prime256v1') return 'ES256';
  if (type === 'ed25519') return 'EdDSA';
  const what = type === 'ec' ? `an EC key on ${details?.namedCurve}` : `a ${type} key`;
  throw new KeyFileError(`it holds ${what}, which is not accepted; use RSA (RS256), EC P-256 (ES256) or Ed25519 (EdDSA)`);
}

/** Every public key of a PEM file (SPKI "PUBLIC KEY" or X.509 "CERTIFICATE" blocks) as JWKs naming their algorithm. */
async function fromPem(text: string): Promise<JWK[]> {
  const blocks = text.match(PEM_BLOCK) ?? [];
  if (blocks.length === 0) throw new KeyFileError('it holds neither a JSON Web Key Set nor a PEM "PUBLIC KEY" block');
  const keys: JWK[] = [];
  for (const block of blocks) {
    if (/PRIVATE KEY/.test(block)) throw new KeyFileError('it holds a private key; give the server only the public key');
    let key: KeyObject;
    try {
      key = createPublicKey(block);
    } catch (err) {
      throw new KeyFileError(`it holds a PEM block that is not a public key (${(err as Error).message})`);
    }
    keys.push({ ...(await exportJWK(key)), alg: algorithmOf(key) });
  }
  return keys;
}

/** The keys of a JSON Web Key Set (RFC 7517 §5), each checked to be a public key of an accepted kind. */
async function fromJwks(text: string): Promise<JWK[]> {
  let set: JSONWebKeySet;
  try {
    set = JSON.parse(text) as JSONWebKeySet;
  } catch (err) {
    throw new KeyFileError(`it is not valid JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(set?.keys) || set.keys.length === 0) throw new KeyFileError('it is JSON but not a JSON Web Key Set with a non-empty "keys" list');
  return set.keys.map((jwk, i) => {
    if ('d' in jwk) throw new KeyFileError(`its key ${i + 1} is a private key; give the server only public keys`);
    let key: KeyObject;
    try {
      key = createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
    } catch (err) {
      throw new KeyFileError(`its key ${i + 1} is not a usable public key (${(err as Error).message})`);
    }
    const alg = algorithmOf(key);
    if (jwk.alg !== undefined && jwk.alg !== alg) {
      throw new KeyFileError(`its key ${i + 1} says "alg": "${jwk.alg}", which is not accepted for its key type (${alg})`);
    }
    return { ...jwk, alg: jwk.alg ?? alg };
  });
}

/**
 * Reads an application's public keys from a file: a JSON Web Key Set, or
 * PEM with one or more public keys or certificates. Throws KeyFileError
 * for a file that cannot be read or holds nothing usable, and for private
 * keys (a misplaced private key should stop the server, not be used).
 */
export async function loadPublicKeys(path: string): Promise<PublicKeys> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new KeyFileError(`it cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const keys = text.trimStart().startsWith('{') ? await fromJwks(text) : await fromPem(text);
  const algorithms = [...new Set(keys.map((key) => key.alg!))];
  return { algorithms, count: keys.length, keyFor: createLocalJWKSet({ keys }) };
}
