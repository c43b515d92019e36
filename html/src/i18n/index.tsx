import { createContext, useCallback, useContext, useEffect, useMemo,
         useState, type ReactNode } from 'react';
import en from './en.json';
import ko from './ko.json';

export type Lang = 'en' | 'ko';
export type MessageKey = keyof typeof en;
export type Vars = Record<string, string | number>;

export const catalogs: Record<Lang, Record<string, string>> = { en, ko };

const STORAGE_KEY = 'maestro.lang';

/* {name} placeholders replaced by vars; a missing key falls back to en */
export function translate(lang: Lang, key: MessageKey, vars?: Vars): string {
  const text = catalogs[lang][key] ?? catalogs.en[key] ?? key;
  if (!vars) {
    return text;
  }
  return text.replace(/\{(\w+)\}/g, (m, name: string) =>
    name in vars ? String(vars[name]) : m);
}

export function initialLang(): Lang {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (saved === 'en' || saved === 'ko') {
      return saved;
    }
  } catch {
    /* storage disabled */
  }
  return typeof navigator !== 'undefined'
    && navigator.language?.toLowerCase().startsWith('ko') ? 'ko' : 'en';
}

interface I18nValue {
  lang: Lang;
  setLang: (l: Lang) => void;
  t: (key: MessageKey, vars?: Vars) => string;
  formatNumber: (n: number) => string;
  formatTime: (ms: number | null | undefined) => string;
}

const I18nContext = createContext<I18nValue | null>(null);

export function I18nProvider({ children, lang: forced }:
                             { children: ReactNode; lang?: Lang }) {
  const [lang, setLangState] = useState<Lang>(forced ?? initialLang);

  useEffect(() => {
    document.documentElement.lang = lang;
  }, [lang]);

  const setLang = useCallback((l: Lang) => {
    setLangState(l);
    try {
      localStorage.setItem(STORAGE_KEY, l);
    } catch {
      /* storage disabled */
    }
  }, []);

  const value = useMemo<I18nValue>(() => {
    const locale = lang === 'ko' ? 'ko-KR' : 'en-US';
    const nf = new Intl.NumberFormat(locale);
    const df = new Intl.DateTimeFormat(locale, {
      month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
      second: '2-digit',
    });
    return {
      lang,
      setLang,
      t: (key, vars) => translate(lang, key, vars),
      formatNumber: (n) => nf.format(n),
      formatTime: (ms) => (ms ? df.format(new Date(ms)) : '—'),
    };
  }, [lang, setLang]);

  return <I18nContext.Provider value={value}>{children}</I18nContext.Provider>;
}

export function useI18n(): I18nValue {
  const v = useContext(I18nContext);
  if (!v) {
    throw new Error('useI18n outside I18nProvider');
  }
  return v;
}
