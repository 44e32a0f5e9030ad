// A scripted model server speaking the OpenAI Chat Completions streaming
// wire format (what the server's openai-go client expects), so that the
// browser sees a real tool-calling turn stream at a pace a person would:
// pieces a few tens of milliseconds apart, like a hosted model.
//
//   "add a task to X"  → round 1: a tool call add_task {"title": X} (arguments
//                        in fragments); round 2: a short answer, word by word
//   "...story..."      → a long answer, word by word, until the client goes away
//   anything else      → a one-line hint
//
// The server's own offline assistant (no OPENAI_* set) is tested too, on an
// instance of its own; it answers at once, so deltas may arrive merged.

import http from 'node:http';
import { once } from 'node:events';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function text(content) {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p) => p.text || '').join('');
  return '';
}

export async function startModel({ pieceMs = 60 } = {}) {
  let seq = 0;
  const server = http.createServer(async (req, res) => {
    if (req.method !== 'POST' || !req.url.endsWith('/chat/completions')) {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error' } }));
      return;
    }
    let body = '';
    for await (const chunk of req) body += chunk;
    const reqBody = JSON.parse(body);
    const msgs = reqBody.messages || [];
    let lastUser = -1;
    msgs.forEach((m, i) => { if (m.role === 'user') lastUser = i; });
    const ask = lastUser >= 0 ? text(msgs[lastUser].content) : '';
    const toolResults = msgs.slice(lastUser + 1).filter((m) => m.role === 'tool');

    const id = `chatcmpl-${++seq}`;
    let gone = false;
    res.on('close', () => { gone = !res.writableFinished; });
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    const send = (delta, finish = null) => {
      if (gone) return false;
      res.write(`data: ${JSON.stringify({
        id, object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: reqBody.model,
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      })}\n\n`);
      return true;
    };
    const stream = async (answer) => {
      send({ role: 'assistant', content: '' });
      for (const word of answer.split(/(?<= )/)) {
        await sleep(pieceMs);
        if (!send({ content: word })) return;
      }
      send({}, 'stop');
      res.end('data: [DONE]\n\n');
    };

    const add = /add (?:a )?task (?:to |called )?(.+)$/i.exec(ask.trim());
    if (add && toolResults.length === 0) {
      const args = JSON.stringify({ title: add[1].replace(/[.!]+$/, '') });
      send({ role: 'assistant', content: null });
      send({ tool_calls: [{ index: 0, id: `call_${seq}`, type: 'function', function: { name: 'add_task', arguments: '' } }] });
      for (const part of [args.slice(0, 10), args.slice(10)]) {
        await sleep(pieceMs);
        send({ tool_calls: [{ index: 0, function: { arguments: part } }] });
      }
      send({}, 'tool_calls');
      res.end('data: [DONE]\n\n');
      return;
    }
    if (toolResults.length > 0) {
      let r = {};
      try { r = JSON.parse(text(toolResults[toolResults.length - 1].content)); } catch { /* keep {} */ }
      await stream(r.error
        ? `Sorry, I could not do that: ${r.error}.`
        : `Done! I added “${r.title}” to your board as task ${r.task_id}. It shows up on every device you have open, so you can tick it off from your phone at the shop.`);
      return;
    }
    if (/story/i.test(ask)) {
      const words = [];
      for (let i = 0; i < 400; i++) words.push(['Once', 'upon', 'a', 'time', 'a', 'task', 'waited', 'patiently', 'on', 'the', 'board.'][i % 11]);
      await stream(words.join(' '));
      return;
    }
    await stream('I can add tasks for you: try “add a task to buy groceries”.');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${server.address().port}/v1`,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}
