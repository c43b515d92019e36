import type { ReactElement } from 'react';
import { render } from '@testing-library/react';
import { I18nProvider, type Lang } from '../i18n';
import { ThemeProvider } from '../theme';
import { NotificationsProvider } from '../notifications';

export function renderApp(ui: ReactElement, lang: Lang = 'en') {
  return render(<I18nProvider lang={lang}><ThemeProvider>
    <NotificationsProvider>{ui}</NotificationsProvider>
  </ThemeProvider></I18nProvider>);
}

export function jsonResponse(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status, headers: { 'Content-Type': 'application/json' } });
}
