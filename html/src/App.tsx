import { lazy, Suspense, useEffect, useRef, useState } from 'react';
import { Content, Header, HeaderGlobalAction, HeaderGlobalBar,
         HeaderMenuButton, HeaderName, HeaderPanel, SideNav, SideNavItems,
         SideNavLink, SkipToContent, TextInput, Theme,
         InlineNotification, Loading } from '@carbon/react';
import { Analytics, Chat, Flow, Light, Notification, NotificationNew,
         Asleep, Translate, UserAvatar, Bot } from '@carbon/icons-react';
import { useI18n } from './i18n';
import { useTheme } from './theme';
import { ROUTES, pathOf, useRoute, type Route } from './router';
import { useNotifications } from './notifications';
import { useUserId } from './user';
import { PromptScreen } from './screens/PromptScreen';
import { formatClock } from './components/format';
import { dismissForbidden } from './api/auth';
import { CallerSummary } from './auth/CallerSummary';
import { describeMe } from './auth/me';
import { useAuth } from './auth/useAuth';
import { useMe } from './auth/useMe';

function useMedia(query: string): boolean {
  const [match, setMatch] = useState(() => window.matchMedia(query).matches);
  useEffect(() => {
    const mq = window.matchMedia(query);
    const on = () => setMatch(mq.matches);
    on();
    mq.addEventListener?.('change', on);
    return () => mq.removeEventListener?.('change', on);
  }, [query]);
  return match;
}

/* the screens but Prompt load on first visit (the service worker
   precaches every chunk, so they open offline); Monitor and Agents are
   fetched ahead once the page is idle */
const MetricsScreen = lazy(() => import('./screens/MetricsScreen'));
/* the key dialog (Carbon's modal) only on a server that asks for keys */
const AuthDialog = lazy(() => import('./auth/AuthDialog')
  .then((m) => ({ default: m.AuthDialog })));
const loadMonitor = () => import('./screens/MonitorScreen');
const loadAgents = () => import('./screens/AgentsScreen');
const MonitorScreen = lazy(() => loadMonitor()
  .then((m) => ({ default: m.MonitorScreen })));
const AgentsScreen = lazy(() => loadAgents()
  .then((m) => ({ default: m.AgentsScreen })));

function prefetchScreens(): () => void {
  const run = () => {
    loadMonitor().catch(() => {});
    loadAgents().catch(() => {});
  };
  const w = window as Window & {
    requestIdleCallback?: (fn: () => void, o?: { timeout: number }) => number;
    cancelIdleCallback?: (id: number) => void;
  };
  if (w.requestIdleCallback) {
    const h = w.requestIdleCallback(run, { timeout: 3000 });
    return () => w.cancelIdleCallback?.(h);
  }
  const h = setTimeout(run, 1500);
  return () => clearTimeout(h);
}

const ICONS = { prompt: Chat, monitor: Flow, metrics: Analytics,
                agents: Bot } as const;
const LABELS = { prompt: 'nav.prompt', monitor: 'nav.monitor',
                 metrics: 'nav.metrics', agents: 'nav.agents' } as const;

type Panel = 'none' | 'notes' | 'user';

export function App() {
  const { t, lang, setLang } = useI18n();
  const { theme, toggle } = useTheme();
  const [route, go] = useRoute();
  const [navOpen, setNavOpen] = useState(false);
  const [panel, setPanel] = useState<Panel>('none');
  const { notes, markRead, clear } = useNotifications();
  const [userId, setUserId] = useUserId();
  const [online, setOnline] = useState(() => navigator.onLine);
  const first = useRef(true);
  const wide = useMedia('(min-width: 66rem)');
  const unread = notes.filter((n) => !n.read).length;
  const auth = useAuth();
  const meState = useMe();
  const me = describeMe(meState.me);
  /* a key's or a token's user is the key's: a user_id sent means nothing */
  const tenant = me?.kind === 'key' || me?.kind === 'jwt';

  useEffect(() => prefetchScreens(), []);

  useEffect(() => {
    const on = () => setOnline(true);
    const off = () => setOnline(false);
    window.addEventListener('online', on);
    window.addEventListener('offline', off);
    return () => {
      window.removeEventListener('online', on);
      window.removeEventListener('offline', off);
    };
  }, []);

  /* a route change moves focus to the new screen's heading */
  useEffect(() => {
    document.title = `${t(LABELS[route])} · Maestro`;
    if (first.current) {
      first.current = false;
      return;
    }
    /* a lazily loaded screen brings its heading a moment later (the
       previous screen's may still be there, hidden: it takes no focus) */
    const focusHeading = () => {
      const h = document.querySelector<HTMLElement>(
        `[data-screen="${route}"] #main-heading`);
      h?.focus();
      return h !== null;
    };
    if (focusHeading()) {
      return undefined;
    }
    const mo = new MutationObserver(() => {
      if (focusHeading()) {
        mo.disconnect();
      }
    });
    mo.observe(document.getElementById('main-content') ?? document.body,
               { childList: true, subtree: true });
    const stop = setTimeout(() => mo.disconnect(), 10000);
    return () => {
      mo.disconnect();
      clearTimeout(stop);
    };
  }, [route, t]);

  useEffect(() => {
    if (panel === 'notes') {
      markRead();
    }
  }, [panel, markRead, notes.length]);

  /* the budget left moves: ask again when the panel opens (not after a
     refused /me: the panel offers to sign in instead of a new prompt) */
  const refreshMe = meState.refresh;
  const meKnown = meState.me !== null;
  useEffect(() => {
    if (panel === 'user' && meKnown) {
      refreshMe();
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [panel, refreshMe]);

  useEffect(() => {
    if (panel === 'none') {
      return undefined;
    }
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        setPanel('none');
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [panel]);

  const navigate = (r: Route) => {
    go(r);
    setNavOpen(false);
  };

  return <Theme theme={theme} className="mst-app">
    <Header aria-label={t('app.name')}>
      <SkipToContent href="#main-content">{t('app.skip')}</SkipToContent>
      <HeaderMenuButton aria-label={navOpen ? t('nav.menu.close')
                                            : t('nav.menu.open')}
                        isActive={navOpen}
                        onClick={() => setNavOpen((v) => !v)} />
      <HeaderName href="/prompt" prefix="IBM" onClick={(e:
        React.MouseEvent) => { e.preventDefault(); navigate('prompt'); }}>
        Maestro
      </HeaderName>
      <HeaderGlobalBar>
        <HeaderGlobalAction aria-label={t('header.language.switch')}
                            data-action="language" tooltipAlignment="end"
                            {...{ lang: lang === 'en' ? 'ko' : 'en' }}
                            onClick={() => setLang(lang === 'en' ? 'ko'
                                                                 : 'en')}>
          <Translate size={20} />
        </HeaderGlobalAction>
        <HeaderGlobalAction aria-label={theme === 'g100'
                              ? t('header.theme.toLight')
                              : t('header.theme.toDark')}
                            data-action="theme" tooltipAlignment="end"
                            onClick={toggle}>
          {theme === 'g100' ? <Light size={20} /> : <Asleep size={20} />}
        </HeaderGlobalAction>
        <HeaderGlobalAction aria-label={unread
                              ? `${t('header.notifications')} (${unread})`
                              : t('header.notifications')}
                            data-action="notifications"
                            aria-expanded={panel === 'notes'}
                            aria-controls="notes-panel"
                            isActive={panel === 'notes'}
                            tooltipAlignment="end"
                            onClick={() => setPanel((p) => (p === 'notes'
                              ? 'none' : 'notes'))}>
          {unread ? <NotificationNew size={20} /> : <Notification size={20} />}
        </HeaderGlobalAction>
        <HeaderGlobalAction aria-label={me?.user
                              ? `${t('header.user')}: ${me.user}`
                              : t('header.user')} data-action="user"
                            aria-expanded={panel === 'user'}
                            aria-controls="user-panel"
                            isActive={panel === 'user'}
                            tooltipAlignment="end"
                            onClick={() => setPanel((p) => (p === 'user'
                              ? 'none' : 'user'))}>
          <UserAvatar size={20} />
        </HeaderGlobalAction>
      </HeaderGlobalBar>
      <HeaderPanel {...{ id: 'notes-panel' }} expanded={panel === 'notes'}
                   {...(panel === 'notes' ? { role: 'region',
                     'aria-label': t('header.notifications') } : {})}
                   className="mst-panel">
        {panel === 'notes' && <div className="mst-panel__body">
          <h2 className="mst-h3">{t('header.notifications')}</h2>
          {notes.length === 0
            ? <p className="mst-muted">{t('header.notifications.empty')}</p>
            : <>
              <ul className="mst-notes">
                {notes.map((n) => <li key={n.id}
                  className={`mst-note mst-note--${n.kind}`}>
                  <strong>{n.title}</strong>
                  {n.subtitle && <span className="mst-mono">{n.subtitle}</span>}
                  <span className="mst-muted mst-small">
                    {formatClock(n.time)}</span>
                </li>)}
              </ul>
              <button type="button" className="mst-linkbtn"
                      onClick={clear}>{t('header.notifications.clear')}
              </button>
            </>}
        </div>}
      </HeaderPanel>
      <HeaderPanel {...{ id: 'user-panel' }} expanded={panel === 'user'}
                   {...(panel === 'user' ? { role: 'region',
                     'aria-label': t('header.user') } : {})} className="mst-panel">
        {panel === 'user' && <div className="mst-panel__body">
          <h2 className="mst-h3">{t('header.user')}</h2>
          <CallerSummary state={meState} hasKey={auth.hasKey} />
          {!tenant && <TextInput id="user-id" labelText={t('header.user.id')}
                     helperText={t('header.user.help')} value={userId}
                     onChange={(e) => setUserId(e.target.value)} />}
          <p className="mst-small">{t('header.language')}: {lang === 'en'
            ? 'English' : '한국어'}</p>
        </div>}
      </HeaderPanel>
      <SideNav aria-label={t('nav.label')} expanded={wide || navOpen}
               isPersistent={wide} isChildOfHeader
               onOverlayClick={() => setNavOpen(false)}
               onSideNavBlur={() => { if (!wide) setNavOpen(false); }}
               className="mst-sidenav">
        <SideNavItems>
          {ROUTES.map((r) => <SideNavLink key={r} href={pathOf(r)}
                                          renderIcon={ICONS[r]}
                                          isActive={route === r}
                                          aria-current={route === r
                                            ? 'page' : undefined}
                                          data-route={r}
                                          onClick={(e: React.MouseEvent) => {
                                            e.preventDefault();
                                            navigate(r);
                                          }}>
            {t(LABELS[r])}
          </SideNavLink>)}
        </SideNavItems>
      </SideNav>
    </Header>
    <Content id="main-content" className="mst-content" tabIndex={-1}>
      {!online && <p className="mst-offline" role="status">
        {t('header.offline')}</p>}
      {auth.forbidden !== null && <InlineNotification kind="error"
        className="mst-forbidden" role="alert" lowContrast
        title={t('auth.forbidden.title')}
        subtitle={t('auth.forbidden', { message: auth.forbidden })}
        statusIconDescription={t('auth.forbidden.title')}
        onClose={() => { dismissForbidden(); return false; }} />}
      {route === 'prompt' && <div data-screen="prompt"><PromptScreen /></div>}
      {route !== 'prompt' && <Suspense fallback={
        <Loading withOverlay={false} description={t('common.loading')} />}>
        {route === 'monitor' && <div data-screen="monitor">
          <MonitorScreen /></div>}
        {route === 'metrics' && <div data-screen="metrics">
          <MetricsScreen /></div>}
        {route === 'agents' && <div data-screen="agents">
          <AgentsScreen /></div>}
      </Suspense>}
    </Content>
    {auth.prompt !== null && <Suspense fallback={null}>
      <AuthDialog /></Suspense>}
  </Theme>;
}
