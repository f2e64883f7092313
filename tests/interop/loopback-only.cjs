// Used by tests/interop/run.sh (the project keeps its own copy of the team reference).
// Preload (node --require) that forces every net.Server.listen() in the process
// onto 127.0.0.1, for servers that have no --host flag (e.g. server-everything,
// which calls app.listen(PORT) and would otherwise bind all interfaces).
'use strict';
const net = require('net');
const HOST = process.env.LOOPBACK_HOST || '127.0.0.1';
const orig = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const a0 = args[0];
  if (a0 === undefined || typeof a0 === 'function') {
    args.unshift(0, HOST);                         // listen() / listen(cb)
  } else if (typeof a0 === 'number' || (typeof a0 === 'string' && /^\d+$/.test(a0))) {
    if (typeof args[1] === 'string') args[1] = HOST; // listen(port, host, ...)
    else args.splice(1, 0, HOST);                    // listen(port[, backlog][, cb])
  } else if (a0 && typeof a0 === 'object' && a0.path === undefined && a0.fd === undefined && !a0._handle) {
    args[0] = { ...a0, host: HOST };                 // listen({port, host?})
  }
  return orig.apply(this, args);
};
