// The webhook contact point of docker-compose.yml: prints one line per alert in every
// notification Grafana sends, so `docker compose logs -f alert-sink` shows the alert rules at work.
// Point LIVESYNC_ALERT_WEBHOOK_URL elsewhere to send the alerts to a real receiver.
import { createServer } from 'node:http';

const port = Number(process.env.PORT ?? 8080);

const server = createServer((request, response) => {
  if (request.method === 'GET' && request.url === '/health') {
    response.writeHead(200).end('ok\n');
    return;
  }
  if (request.method !== 'POST') {
    response.writeHead(405).end();
    return;
  }
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', () => {
    try {
      const notification = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      for (const alert of notification.alerts ?? []) {
        const labels = Object.entries(alert.labels ?? {})
          .map(([name, value]) => `${name}=${value}`)
          .join(' ');
        const summary = alert.annotations?.summary ?? '';
        process.stdout.write(`${new Date().toISOString()} ${alert.status} ${labels} ${summary}\n`);
      }
      response.writeHead(204).end();
    } catch (error) {
      console.error('alert-sink: not a Grafana webhook notification:', error.message);
      response.writeHead(400).end();
    }
  });
});

server.listen(port, () => process.stdout.write(`alert-sink: listening on :${server.address().port}\n`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
