// Loopback addresses of their own for benchmark peers. All of 127.0.0.0/8 is loopback on Linux, and a
// gateway budgets unproven intros per IP address (8 a second after a burst of 16, docs/security.md):
// peers that all dialled from 127.0.0.1 measured that budget (a refused intro waits out a 200 ms
// re-send), not the handshake.

/** The `n`th address of 127.`net`.0.0/16 (n from 0; 250 per third byte, never .0). */
export function loopbackHost(n, net) {
  return `127.${net}.${Math.floor(n / 250) % 256}.${(n % 250) + 1}`;
}
