// Port forward, in JavaScript: the policy of policies/port-forward (Rust),
// rule for rule and message for message, built with componentize-js.
//
// Connections to `listen_port` arriving on the LAN are sent to `target`. The
// default configuration is the hand-made setup wasmwall grew from: LAN
// clients reach a server that listens on 127.0.0.1:4000 only by connecting to
// the machine's port 80, and everything else coming in is dropped.
//
// Config keys (all optional):
// - `listen_port`: port clients connect to (default 80)
// - `target`: where connections go, "addr:port" (default "127.0.0.1:4000")
// - `protocol`: "tcp" or "udp" (default "tcp")
// - `lan_interface`: comma-separated interface names the forward applies to
//   (default: every interface that is up, except loopback)
// - `allowed_sources`: comma-separated addresses or prefixes allowed to use
//   the forward (default: anyone but this machine's own LAN addresses)
//
// The three versions of this policy are tested to return identical rulesets
// and identical error messages for every fixture in
// policies/port-forward/fixtures. That is why the parsing below follows
// Rust's standard library to the letter: which addresses and ports are
// accepted, how an IPv6 address is printed, and the wording of each error.
//
// WIT values in JavaScript: records are objects with camelCase fields,
// variants are `{ tag, val }`, enums are their case names as strings, an
// absent option is `undefined`, flags are objects of booleans. Returning
// gives `ok`; throwing a value gives `err` with that value.

const KNOWN_KEYS = ['listen_port', 'target', 'protocol', 'lan_interface', 'allowed_sources'];

class PolicyError extends Error {}

export function evaluate(state, event, config) {
  try {
    return portForward(state, new Config(config));
  } catch (e) {
    if (e instanceof PolicyError) {
      // The `err` case of the result: its payload is the thrown string.
      throw e.message;
    }
    throw e;
  }
}

// ---------------------------------------------------------------------------
// The policy
// ---------------------------------------------------------------------------

function portForward(state, config) {
  config.rejectUnknown(KNOWN_KEYS);
  const listenPort = config.parseOr('listen_port', parseU16, 80);
  if (listenPort === 0) {
    throw new PolicyError('config key `listen_port`: port 0 is not a valid port');
  }
  const target = config.parseOr('target', parseSocketAddr, new SocketAddr(new Ip(4, [127, 0, 0, 1]), 4000, 0));
  if (target.port === 0) {
    throw new PolicyError('config key `target`: port 0 is not a valid port');
  }
  const protocol = config.getOr('protocol', 'tcp');
  if (protocol !== 'tcp' && protocol !== 'udp') {
    throw new PolicyError(`config key \`protocol\`: expected "tcp" or "udp", got ${rustDebug(protocol)}`);
  }
  let lanInterfaces = config.list('lan_interface');
  if (lanInterfaces.length === 0) {
    lanInterfaces = state.interfaces.filter((i) => i.up && i.name !== 'lo').map((i) => i.name);
  }
  const allowedSources = config.list('allowed_sources');

  const targetIp = target.ip;
  const targetIsLocal = targetIp.isLoopback();
  const targetText = target.toString();

  // Whitelist by default: nothing comes in or through unless allowed.
  const inputRules = [];
  const forwardRules = [];
  const preroutingRules = [];
  const sysctls = [];
  // Connections to the translated destination, wherever they are let in.
  const toTarget = rule([daddr(targetIp.toString()), dport(protocol, target.port)], { tag: 'accept' }, { counter: true });

  if (targetIsLocal) {
    // The forwarded connection ends on this machine: let it in, and let the
    // local server's own loopback traffic through.
    inputRules.push(toTarget);
    inputRules.push(rule([saddr(targetIp.toString()), sport(protocol, target.port)], { tag: 'accept' }));
  } else {
    // The connection is routed on to another host.
    forwardRules.push(rule([match({ tag: 'ct-state', val: ['established', 'related'] })], { tag: 'accept' }));
    forwardRules.push(toTarget);
    const key = targetIp.version === 4 ? 'net.ipv4.ip_forward' : 'net.ipv6.conf.all.forwarding';
    sysctls.push({ key, value: '1' });
  }

  for (const iface of lanInterfaces) {
    const base = [match({ tag: 'iifname', val: iface })];
    const known = state.interfaces.find((i) => i.name === iface);
    let sources;
    if (allowedSources.length === 0) {
      // Anyone but this machine itself.
      const matches = [...base];
      if (known !== undefined) {
        for (const ip of ips(known)) {
          if (sameFamily(ip, targetIp)) {
            matches.push(match({ tag: 'saddr', val: ip }, true));
          }
        }
      }
      sources = [matches];
    } else {
      sources = allowedSources.map((src) => [...base, saddr(src)]);
    }
    for (const matches of sources) {
      preroutingRules.push(
        rule([...matches, dport(protocol, listenPort)], { tag: 'dnat', val: natTarget(target) }, {
          counter: true,
          comment: `port ${listenPort} to ${targetText}`,
        }),
      );
    }
    // Routing outside traffic to 127.0.0.0/8 must be allowed on the
    // interface it arrives on; only an existing interface can be set.
    if (targetIsLocal && targetIp.version === 4 && known !== undefined) {
      sysctls.push({ key: `net.ipv4.conf.${iface.replaceAll('.', '/')}.route_localnet`, value: '1' });
    }
  }

  return {
    chains: [
      baseChain('input', 'input', 'filter', 0, 'drop', inputRules),
      baseChain('forward', 'forward', 'filter', 0, 'drop', forwardRules),
      baseChain('prerouting', 'prerouting', 'nat', -100, 'accept', preroutingRules),
    ],
    sets: [],
    maps: [],
    counters: [],
    limits: [],
    ctHelpers: [],
    flowtables: [],
    sysctls,
  };
}

/** The interface's addresses without their prefix length. */
function ips(iface) {
  return iface.addresses.map((a) => {
    const slash = a.indexOf('/');
    return slash === -1 ? a : a.slice(0, slash);
  });
}

function sameFamily(ip, other) {
  const parsed = parseIp(ip);
  return parsed !== null && parsed.version === other.version;
}

function natTarget(target) {
  let address = target.ip.toString();
  if (target.scopeId !== 0) {
    address += `%${target.scopeId}`;
  }
  return {
    address,
    lastAddress: undefined,
    ports: { first: target.port, last: target.port },
    flags: { random: false, fullyRandom: false, persistent: false },
  };
}

// ---------------------------------------------------------------------------
// Rule building
// ---------------------------------------------------------------------------

function match(matcher, negate = false) {
  return { matcher, negate };
}

function saddr(prefix) {
  return match({ tag: 'saddr', val: prefix });
}

function daddr(prefix) {
  return match({ tag: 'daddr', val: prefix });
}

function sport(protocol, port) {
  return match({ tag: 'sport', val: { protocol, first: port, last: port } });
}

function dport(protocol, port) {
  return match({ tag: 'dport', val: { protocol, first: port, last: port } });
}

function rule(matches, action, { counter = false, comment = undefined } = {}) {
  return { matches, statements: counter ? [{ tag: 'counter' }] : [], action, comment };
}

function baseChain(name, hook, type, priority, policy, rules) {
  return { name, base: { hook, type, priority: { tag: 'number', val: priority }, policy }, rules };
}

// ---------------------------------------------------------------------------
// Config, as the Rust SDK's `Config` reads it
// ---------------------------------------------------------------------------

class Config {
  constructor(entries) {
    this.entries = entries;
  }

  /** The value of `key`, if set (the last one wins when repeated). */
  get(key) {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      if (this.entries[i][0] === key) {
        return this.entries[i][1];
      }
    }
    return undefined;
  }

  getOr(key, fallback) {
    const value = this.get(key);
    return value === undefined ? fallback : value;
  }

  /** The value of `key` parsed, or `fallback` when unset; the error names the key and the value. */
  parseOr(key, parse, fallback) {
    const value = this.get(key);
    if (value === undefined) {
      return fallback;
    }
    const parsed = parse(value);
    if (parsed.error !== undefined) {
      throw new PolicyError(`config key \`${key}\`: invalid value ${rustDebug(value)}: ${parsed.error}`);
    }
    return parsed.value;
  }

  /** A comma-separated list, trimmed, empty items dropped. */
  list(key) {
    const value = this.get(key);
    if (value === undefined) {
      return [];
    }
    return value
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '');
  }

  rejectUnknown(known) {
    for (const [key] of this.entries) {
      if (!known.includes(key)) {
        throw new PolicyError(`unknown config key \`${key}\` (known keys: ${known.join(', ')})`);
      }
    }
  }
}

/**
 * `text` quoted and escaped as Rust's `{:?}` prints a string (for ASCII and
 * printable characters; other control characters become \u{..}).
 */
function rustDebug(text) {
  const escapes = { '\0': '\\0', '\t': '\\t', '\r': '\\r', '\n': '\\n', '\\': '\\\\', '"': '\\"' };
  let out = '"';
  for (const c of text) {
    const code = c.codePointAt(0);
    if (c in escapes) {
      out += escapes[c];
    } else if (code < 0x20 || (code >= 0x7f && code < 0xa0)) {
      out += `\\u{${code.toString(16)}}`;
    } else {
      out += c;
    }
  }
  return out + '"';
}

/** `u16::from_str`: an optional '+', ASCII digits, at most 65535. */
function parseU16(text) {
  if (text === '+' || text === '-') {
    return { error: 'invalid digit found in string' };
  }
  if (text === '') {
    return { error: 'cannot parse integer from empty string' };
  }
  const digits = text.startsWith('+') ? text.slice(1) : text;
  let value = 0;
  for (const c of digits) {
    const product = value * 10;
    if (c < '0' || c > '9') {
      return { error: 'invalid digit found in string' };
    }
    value = product + (c.charCodeAt(0) - 48);
    if (value > 0xffff) {
      return { error: 'number too large to fit in target type' };
    }
  }
  return { value };
}

// ---------------------------------------------------------------------------
// Addresses, as Rust's std::net parses and prints them
// ---------------------------------------------------------------------------

class Ip {
  // IPv4: four octets; IPv6: eight 16-bit segments.
  constructor(version, parts) {
    this.version = version;
    this.parts = parts;
  }

  isLoopback() {
    if (this.version === 4) {
      return this.parts[0] === 127;
    }
    return this.parts.every((p, i) => p === (i === 7 ? 1 : 0));
  }

  toString() {
    const s = this.parts;
    if (this.version === 4) {
      return s.join('.');
    }
    if (s.slice(0, 6).every((p, i) => p === (i === 5 ? 0xffff : 0))) {
      return `::ffff:${s[6] >> 8}.${s[6] & 0xff}.${s[7] >> 8}.${s[7] & 0xff}`;
    }
    // The longest run of two or more zero segments becomes "::" (the first
    // such run when two are equally long).
    let bestStart = 0;
    let bestLen = 0;
    let start = -1;
    [...s, 1].forEach((segment, i) => {
      if (segment === 0) {
        if (start === -1) {
          start = i;
        }
      } else if (start !== -1) {
        if (i - start > bestLen) {
          bestStart = start;
          bestLen = i - start;
        }
        start = -1;
      }
    });
    const hexes = s.map((p) => p.toString(16));
    if (bestLen > 1) {
      return `${hexes.slice(0, bestStart).join(':')}::${hexes.slice(bestStart + bestLen).join(':')}`;
    }
    return hexes.join(':');
  }
}

class SocketAddr {
  constructor(ip, port, scopeId) {
    this.ip = ip;
    this.port = port;
    this.scopeId = scopeId;
  }

  toString() {
    if (this.ip.version === 4) {
      return `${this.ip}:${this.port}`;
    }
    if (this.scopeId !== 0) {
      return `[${this.ip}%${this.scopeId}]:${this.port}`;
    }
    return `[${this.ip}]:${this.port}`;
  }
}

/** `IpAddr::from_str`, or null. */
function parseIp(text) {
  const p = new Parser(text);
  const ip = p.ipv4() ?? p.ipv6();
  return ip !== null && p.done() ? ip : null;
}

/** `SocketAddr::from_str`. */
function parseSocketAddr(text) {
  const p = new Parser(text);
  const addr = p.socketAddrV4() ?? p.socketAddrV6();
  if (addr === null || !p.done()) {
    return { error: 'invalid socket address syntax' };
  }
  return { value: addr };
}

// A port of the parser of Rust's core::net: each reader either consumes what
// it read and returns it, or consumes nothing and returns null.
class Parser {
  constructor(text) {
    this.text = text;
    this.pos = 0;
  }

  done() {
    return this.pos === this.text.length;
  }

  atomically(read) {
    const start = this.pos;
    const result = read();
    if (result === null) {
      this.pos = start;
    }
    return result;
  }

  peek() {
    return this.pos < this.text.length ? this.text[this.pos] : null;
  }

  givenChar(c) {
    if (this.peek() === c) {
      this.pos += 1;
      return true;
    }
    return null;
  }

  separator(sep, index, read) {
    return this.atomically(() => {
      if (index > 0 && this.givenChar(sep) === null) {
        return null;
      }
      return read();
    });
  }

  number(radix, maxDigits, allowZeroPrefix, limit) {
    return this.atomically(() => {
      const hasLeadingZero = this.peek() === '0';
      let value = 0;
      let count = 0;
      for (;;) {
        const d = digit(this.peek(), radix);
        if (d === null) {
          break;
        }
        this.pos += 1;
        value = value * radix + d;
        if (value > limit) {
          return null;
        }
        count += 1;
        if (maxDigits !== null && count > maxDigits) {
          return null;
        }
      }
      if (count === 0) {
        return null;
      }
      if (!allowZeroPrefix && hasLeadingZero && count > 1) {
        return null;
      }
      return value;
    });
  }

  ipv4() {
    return this.atomically(() => {
      const octets = [];
      for (let i = 0; i < 4; i++) {
        const octet = this.separator('.', i, () => this.number(10, 3, false, 0xff));
        if (octet === null) {
          return null;
        }
        octets.push(octet);
      }
      return new Ip(4, octets);
    });
  }

  ipv6Groups(groups, limit) {
    for (let i = 0; i < limit; i++) {
      // A trailing embedded IPv4 address needs two groups left.
      if (i < limit - 1) {
        const v4 = this.separator(':', i, () => this.ipv4());
        if (v4 !== null) {
          const o = v4.parts;
          groups[i] = (o[0] << 8) | o[1];
          groups[i + 1] = (o[2] << 8) | o[3];
          return [i + 2, true];
        }
      }
      const group = this.separator(':', i, () => this.number(16, 4, true, 0xffff));
      if (group === null) {
        return [i, false];
      }
      groups[i] = group;
    }
    return [limit, false];
  }

  ipv6() {
    return this.atomically(() => {
      const head = [0, 0, 0, 0, 0, 0, 0, 0];
      const [headSize, headIpv4] = this.ipv6Groups(head, 8);
      if (headSize === 8) {
        return new Ip(6, head);
      }
      // An embedded IPv4 address is only allowed at the very end.
      if (headIpv4) {
        return null;
      }
      if (this.givenChar(':') === null || this.givenChar(':') === null) {
        return null;
      }
      // "::" stands for at least one zero group.
      const tail = [0, 0, 0, 0, 0, 0, 0];
      const [tailSize] = this.ipv6Groups(tail, 8 - (headSize + 1));
      for (let i = 0; i < tailSize; i++) {
        head[8 - tailSize + i] = tail[i];
      }
      return new Ip(6, head);
    });
  }

  port() {
    return this.atomically(() => {
      if (this.givenChar(':') === null) {
        return null;
      }
      return this.number(10, null, true, 0xffff);
    });
  }

  socketAddrV4() {
    return this.atomically(() => {
      const ip = this.ipv4();
      if (ip === null) {
        return null;
      }
      const port = this.port();
      return port === null ? null : new SocketAddr(ip, port, 0);
    });
  }

  socketAddrV6() {
    return this.atomically(() => {
      if (this.givenChar('[') === null) {
        return null;
      }
      const ip = this.ipv6();
      if (ip === null) {
        return null;
      }
      const scopeId = this.atomically(() => (this.givenChar('%') === null ? null : this.number(10, null, true, 0xffffffff)));
      if (this.givenChar(']') === null) {
        return null;
      }
      const port = this.port();
      return port === null ? null : new SocketAddr(ip, port, scopeId ?? 0);
    });
  }
}

function digit(c, radix) {
  if (c === null) {
    return null;
  }
  if (c >= '0' && c <= '9') {
    return c.charCodeAt(0) - 48;
  }
  const lower = c.toLowerCase();
  if (radix === 16 && lower >= 'a' && lower <= 'f' && lower.length === 1) {
    return lower.charCodeAt(0) - 87;
  }
  return null;
}
