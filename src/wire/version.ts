// Protocol versions: each side says what it speaks and the oldest it still accepts, and both sides
// check both ways, as freenet does (remote ≥ my minimum, and me ≥ the remote's minimum).
import { invalidArgValue, validateInteger, validateObject } from "../errors/validate.ts";

export interface ProtocolVersion {
  major: number;
  minor: number;
  /** The oldest version this side still talks to. Default: its own major.0. */
  minimum?: { major: number; minor: number };
}

/** 3.0: the Noise IK handshake with cookies and timestamps, key phases and path validation (docs/wire.md); 2.x and older are refused. */
export const PROTOCOL_VERSION: Required<ProtocolVersion> = { major: 3, minor: 0, minimum: { major: 3, minor: 0 } };
export const VERSION_BYTES = 4;

/** `version` checked, with its minimum filled in (default: its own major.0); `name` names it in errors. */
export function normalizeVersion(version: ProtocolVersion | undefined, name: string): Required<ProtocolVersion> {
  if (version === undefined) return PROTOCOL_VERSION;
  validateObject(version, name);
  const { major, minor } = version;
  validateInteger(major, `${name}.major`, 0, 255);
  validateInteger(minor, `${name}.minor`, 0, 255);
  const minimum = version.minimum ?? { major, minor: 0 };
  validateObject(minimum, `${name}.minimum`);
  validateInteger(minimum.major, `${name}.minimum.major`, 0, 255);
  validateInteger(minimum.minor, `${name}.minimum.minor`, 0, 255);
  if (order(minimum.major, minimum.minor) > order(major, minor)) {
    throw invalidArgValue(`${name}.minimum`, minimum, `must not be newer than the version itself (${major}.${minor})`);
  }
  return { major, minor, minimum };
}

function order(major: number, minor: number): number {
  return major * 256 + minor;
}

export function compatible(local: Required<ProtocolVersion>, remote: Required<ProtocolVersion>): boolean {
  return order(remote.major, remote.minor) >= order(local.minimum.major, local.minimum.minor)
    && order(local.major, local.minor) >= order(remote.minimum.major, remote.minimum.minor);
}

export function describeVersion(version: Required<ProtocolVersion>): string {
  return `${version.major}.${version.minor} (accepts ≥ ${version.minimum.major}.${version.minimum.minor})`;
}

export function writeVersion(version: Required<ProtocolVersion>, into: Uint8Array, at: number): void {
  into[at] = version.major;
  into[at + 1] = version.minor;
  into[at + 2] = version.minimum.major;
  into[at + 3] = version.minimum.minor;
}

export function readVersion(from: Uint8Array, at: number): Required<ProtocolVersion> {
  return { major: from[at]!, minor: from[at + 1]!, minimum: { major: from[at + 2]!, minor: from[at + 3]! } };
}
