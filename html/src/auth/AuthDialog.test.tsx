import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { act, fireEvent, screen, waitFor, within } from '@testing-library/react';
import { jsonResponse, renderApp } from '../test/render';
import { App } from '../App';
import { getKey } from '../api/auth';

const GOOD = 'mk_0123456789abcdef_good';

/* a closed Carbon modal stays in the DOM, hidden by its CSS */
const dialogOpen = () => Boolean(document.querySelector(
  '.cds--modal.is-visible [role="dialog"]'));

describe('the API key dialog in the app', () => {
  let sent: (string | null)[];

  beforeEach(() => {
    sent = [];
    window.history.replaceState(null, '', '/prompt');
    vi.stubGlobal('fetch', vi.fn(async (url: string, init?: RequestInit) => {
      const a = new Headers(init?.headers).get('Authorization');
      sent.push(a);
      if (a !== `Bearer ${GOOD}`) {
        return new Response(JSON.stringify({ error: {
          code: 'unauthorized', message: 'invalid API key' } }),
        { status: 401, headers: { 'WWW-Authenticate':
                                    'Bearer realm="maestro"' } });
      }
      if (url === '/api/v1/me') {
        return jsonResponse({ kind: 'key', user_id: 'alice', team: 'red',
          key_id: 'key_0123456789abcdef',
          key: { id: 'key_0123456789abcdef', limits: { rpm: 60 },
                 budget_usd: 10, budget_period: 'month' },
          limits: { rpm: { limit: 60, remaining: 59, reset_ms: 1000 },
                    max_parallel: { limit: 2, in_flight: 1 } },
          usage: { total: 1234, calls: 3, cost_usd: 2.5 },
          budget: { usd: 10, period: 'month', spent_usd: 2.5,
                    remaining_usd: 7.5 } });
      }
      return jsonResponse({ items: [], next_cursor: null });
    }));
  });
  afterEach(() => vi.unstubAllGlobals());

  it('asks on a 401, refuses a wrong key, keeps the right one',
     async () => {
    renderApp(<App />);
    const dialog = await screen.findByRole('dialog', { name: 'API key' });
    await waitFor(() => expect(dialogOpen()).toBe(true));
    const input = within(dialog).getByLabelText('API key') as
      HTMLInputElement;
    expect(input.type).toBe('password');
    await waitFor(() => expect(document.activeElement).toBe(input));

    fireEvent.change(input, { target: { value: 'mk_wrong' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Sign in' }));
    await within(dialog).findByText(/This key was not accepted: invalid API key/);
    expect(getKey()).toBeNull();
    expect(dialogOpen()).toBe(true);

    fireEvent.change(input, { target: { value: GOOD } });
    fireEvent.submit(input.closest('form') as HTMLFormElement);
    await waitFor(() => expect(getKey()).toBe(GOOD));
    expect(localStorage.getItem('maestro.apikey')).toBeNull();
    await waitFor(() => expect(dialogOpen()).toBe(false));

    /* the caller in the user panel: who, budget left, limits */
    fireEvent.click(screen.getByRole('button', { name: /^User/ }));
    const panel = await screen.findByRole('region', { name: /^User/ });
    await within(panel).findByText('alice');
    expect(within(panel).getByText('red')).toBeTruthy();
    expect(within(panel).getByText('$7.50 left of $10.00')).toBeTruthy();
    expect(within(panel).getByText('Requests per minute')).toBeTruthy();
    expect(panel.querySelector('[data-limit="rpm"]')?.textContent)
      .toBe('60 · 59 left now');
    expect(panel.querySelector('[data-limit="max_parallel"]')?.textContent)
      .toBe('2 · 1 running');
    expect(panel.querySelector('[data-usage="total"]')?.textContent)
      .toBe('1,234');
    expect(panel.querySelector('[data-usage="cost_usd"]')?.textContent)
      .toBe('$2.50');
    /* a key's user is the key's: no user id field */
    expect(within(panel).queryByLabelText('User ID')).toBeNull();
    expect(within(panel).getByRole('button', { name: 'Sign out' }))
      .toBeTruthy();
  });

  it('Escape closes it; the request fails with its 401', async () => {
    renderApp(<App />);
    await waitFor(() => expect(dialogOpen()).toBe(true));
    act(() => {
      fireEvent.keyDown(document.activeElement ?? document.body,
                        { key: 'Escape', code: 'Escape' });
    });
    await waitFor(() => expect(dialogOpen()).toBe(false));
    fireEvent.click(screen.getByRole('button', { name: 'User' }));
    const panel = await screen.findByRole('region', { name: 'User' });
    expect(await within(panel).findByRole('button',
      { name: 'Sign in with an API key' })).toBeTruthy();
  });
});
