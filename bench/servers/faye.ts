// The second reference: Faye's Bayeux server, used over its long-polling
// transport (clients POST /meta/connect and are held until a message or the
// timeout), with its in-memory engine.
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import faye from 'faye';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, timeout: { type: 'string', default: '25' } } });
const server = createServer();
new faye.NodeAdapter({ mount: '/faye', timeout: Number(values.timeout) }).attach(server);
server.keepAliveTimeout = 65_000;
server.listen(Number(values.port), '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  console.log(`listening on http://127.0.0.1:${port}`);
});
process.on('SIGTERM', () => process.exit(0));
