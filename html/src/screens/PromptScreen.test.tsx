import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { act, fireEvent, screen, waitFor } from '@testing-library/react';
import { FakeWebSocket } from '../test/fakeWebSocket';
import { jsonResponse, renderApp } from '../test/render';
import { resetTransportMemory } from '../live/transport';
import { resetAnalyzeMemory } from '../api/complexity';
import { PromptScreen } from './PromptScreen';

const ID = 'wf_0123456789abcdef0123';

describe('PromptScreen', () => {
  let posted: unknown = null;

  beforeEach(() => {
    FakeWebSocket.reset();
    resetTransportMemory();
    resetAnalyzeMemory();
    posted = null;
    vi.stubGlobal('WebSocket', FakeWebSocket);
    vi.stubGlobal('fetch', vi.fn(async (url: string, init?: RequestInit) => {
      if (url === '/api/v1/analyze') {
        const { prompt } = JSON.parse(String(init?.body));
        const code = prompt.includes('```');
        return jsonResponse({ intent: code ? 'code' : 'general',
          complexity: code ? 'complex' : 'simple',
          route: { workflow: code ? 'coder' : 'default' },
          signals: { words: 3, code_blocks: code ? 1 : 0, steps: 0 } });
      }
      if (url.endsWith('/graph')) {
        return jsonResponse({ id: ID, workflow: 'default', graph: {
          entry: 'llm', nodes: { llm: { agent: 'llm' } },
          edges: [{ from: 'llm', to: '$end' }] } });
      }
      if (init?.method === 'POST') {
        posted = JSON.parse(String(init.body));
        return jsonResponse({ id: ID, status: 'queued' }, 202);
      }
      if (url.startsWith(`/api/v1/workflows/${ID}`)) {
        return jsonResponse({ id: ID, workflow: 'default', status: 'queued',
          progress: 0, last_event_id: 0, agents: {} });
      }
      return jsonResponse({ error: { code: 'not_found', message: 'no' } },
                          404);
    }));
  });
  afterEach(() => vi.unstubAllGlobals());

  it('shows a live complexity tag', async () => {
    renderApp(<PromptScreen />);
    const box = screen.getByLabelText('Your request');
    expect(screen.getByText('Simple')).toBeTruthy();
    fireEvent.change(box, { target: { value: '1. plan\n2. build' } });
    /* the local heuristic at once */
    expect(screen.getByText('Complex')).toBeTruthy();
  });

  it('the tag, intent and route come from the server', async () => {
    const { container } = renderApp(<PromptScreen />);
    fireEvent.change(screen.getByLabelText('Your request'),
                     { target: { value: 'Fix:\n```\nx\n```' } });
    await waitFor(() => expect(container.querySelector(
      '[data-complexity="complex"][data-source="server"]')).toBeTruthy());
    expect(container.querySelector('[data-intent]')?.textContent)
      .toBe('Intent: code');
    expect(container.querySelector('[data-route-name]')?.textContent)
      .toBe('Route: coder');
  });

  it('shows intent and route in Korean', async () => {
    const { container } = renderApp(<PromptScreen />, 'ko');
    fireEvent.change(screen.getByLabelText('요청 내용'),
                     { target: { value: 'hello' } });
    await waitFor(() => expect(container.querySelector(
      '[data-route-name="default"]')?.textContent).toBe('경로: default'));
    expect(container.querySelector('[data-intent]')?.textContent)
      .toBe('의도: general');
  });

  it('refuses an empty prompt', async () => {
    renderApp(<PromptScreen />);
    fireEvent.click(screen.getByRole('button', { name: 'Send' }));
    expect(await screen.findByText('Enter a prompt first.')).toBeTruthy();
    expect(posted).toBeNull();
  });

  it('sends prompt and context, streams the answer as text', async () => {
    const { container } = renderApp(<PromptScreen />);
    fireEvent.change(screen.getByLabelText('Your request'),
                     { target: { value: 'Say hi' } });
    const input = container.querySelector('input[type=file]') as
      HTMLInputElement;
    const file = new File(['# notes'], 'notes.md', { type: 'text/markdown' });
    fireEvent.change(input, { target: { files: [file] } });
    await screen.findByText('notes.md');
    fireEvent.click(screen.getByRole('button', { name: 'Send' }));
    await waitFor(() => expect(posted).toEqual({
      prompt: 'Say hi', context: [{ name: 'notes.md', content: '# notes' }],
    }));
    await waitFor(() => expect(FakeWebSocket.instances.length)
      .toBeGreaterThan(0));
    const ws = FakeWebSocket.last();
    expect(ws.url).toBe(`ws://localhost:3000/api/v1/workflows/${ID}/ws`);
    const es = {
      open: () => ws.open(),
      emit: (type: string, id: number, data: unknown) =>
        ws.emit(type, id, data, ID),
    };
    act(() => {
      es.open();
      es.emit('workflow_update', 1, { id: ID, name: 'default',
        status: 'running', progress: 40, started_at: 1 });
      es.emit('agent_status', 2, { id: 'llm', name: 'llm', agent: 'llm',
        status: 'executing', progress: 50, current_task: 'step 1 of 1',
        metrics: { tokens: 7, execution_ms: 3, memory_bytes: 0 },
        attempts: 1 });
      es.emit('token', 3, { agent: 'llm', text: 'Hello <img src=x ' });
      es.emit('token', 4, { agent: 'llm', text: 'onerror=alert(1)>' });
    });
    expect(screen.getByText('Processing')).toBeTruthy();
    expect(container.querySelector('[data-connection="open"]')
      ?.getAttribute('data-transport')).toBe('websocket');
    expect(screen.getByText('· WebSocket', { exact: false })).toBeTruthy();
    const answer = container.querySelector('#answer') as HTMLElement;
    expect(answer.textContent).toBe('Hello <img src=x onerror=alert(1)>');
    expect(answer.querySelector('img')).toBeNull();
    expect(container.querySelector('[data-node="llm"]')
      ?.getAttribute('data-status')).toBe('executing');
    expect(screen.getByText('step 1 of 1')).toBeTruthy();
    act(() => {
      es.emit('done', 5, { id: ID, status: 'complete', result: 'Hello.' });
    });
    expect(answer.textContent).toBe('Hello.');
    expect(screen.getByText(`Workflow ${ID} finished.`)).toBeTruthy();
    expect(ws.closedWith).toBe(1000);
    /* no SSE request: the WebSocket carried it all */
    expect(vi.mocked(fetch).mock.calls.some(([u]) =>
      String(u).endsWith('/events'))).toBe(false);
  });

  it('Clear empties the form', async () => {
    renderApp(<PromptScreen />);
    const box = screen.getByLabelText('Your request') as HTMLTextAreaElement;
    fireEvent.change(box, { target: { value: 'something' } });
    fireEvent.click(screen.getByRole('button', { name: 'Clear' }));
    expect(box.value).toBe('');
  });

  it('speaks Korean', () => {
    renderApp(<PromptScreen />, 'ko');
    expect(screen.getByRole('button', { name: '보내기' })).toBeTruthy();
    expect(screen.getByLabelText('요청 내용')).toBeTruthy();
  });
});
