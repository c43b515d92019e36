import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fireEvent, screen, waitFor } from '@testing-library/react';
import { jsonResponse, renderApp } from './test/render';
import { App } from './App';

describe('App shell', () => {
  beforeEach(() => {
    window.history.replaceState(null, '', '/prompt');
    vi.stubGlobal('fetch', vi.fn(async (url: string) => {
      if (url.startsWith('/api/v1/workflows?')) {
        return jsonResponse({ items: [{ id: 'wf_00000000000000000001',
          workflow: 'default', status: 'complete', progress: 100,
          created_at: 1, started_at: 1, finished_at: 2, updated_at: 2,
          agents: {} }], next_cursor: null });
      }
      if (url === '/api/v1/agents') {
        return jsonResponse({ items: [{ name: 'llm', plugin: 'llm.so',
          version: '1.0.0', description: 'answers', capabilities: ['chat'] }] });
      }
      return jsonResponse({ items: [] });
    }));
  });
  afterEach(() => vi.unstubAllGlobals());

  it('navigates between screens with the side navigation', async () => {
    renderApp(<App />);
    expect(screen.getByRole('heading', { level: 1, name: 'Prompt' }))
      .toBeTruthy();
    fireEvent.click(screen.getByRole('link', { name: 'Workflow Monitor' }));
    expect(window.location.pathname).toBe('/monitor');
    await screen.findByText('wf_00000000000000000001');
    expect(screen.getByText('Completed')).toBeTruthy();
    fireEvent.click(screen.getByRole('link', { name: 'Agents' }));
    await screen.findByText('llm.so');
    expect(document.activeElement?.id).toBe('main-heading');
  });

  it('switches language and theme', async () => {
    renderApp(<App />);
    fireEvent.click(screen.getByRole('button', { name: '한국어로 보기' }));
    expect(screen.getByRole('heading', { level: 1, name: '프롬프트' }))
      .toBeTruthy();
    expect(document.documentElement.lang).toBe('ko');
    fireEvent.click(screen.getByRole('button', { name: '밝은 테마로 전환' }));
    await waitFor(() => expect(document.documentElement.dataset.theme)
      .toBe('white'));
    expect(localStorage.getItem('maestro.theme')).toBe('white');
  });
});
