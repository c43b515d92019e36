import { createContext, useCallback, useContext, useEffect, useState,
         type ReactNode } from 'react';

export type ThemeName = 'g100' | 'white';
const STORAGE_KEY = 'maestro.theme';

function initialTheme(): ThemeName {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (saved === 'g100' || saved === 'white') {
      return saved;
    }
  } catch {
    /* storage disabled */
  }
  return 'g100';
}

interface ThemeValue {
  theme: ThemeName;
  toggle: () => void;
}

const ThemeContext = createContext<ThemeValue>({ theme: 'g100',
                                                  toggle: () => {} });

export function ThemeProvider({ children }: { children: ReactNode }) {
  const [theme, setTheme] = useState<ThemeName>(initialTheme);

  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    const meta = document.querySelector('meta[name="theme-color"]');
    meta?.setAttribute('content', theme === 'g100' ? '#161616' : '#ffffff');
  }, [theme]);

  const toggle = useCallback(() => {
    setTheme((t) => {
      const next = t === 'g100' ? 'white' : 'g100';
      try {
        localStorage.setItem(STORAGE_KEY, next);
      } catch {
        /* storage disabled */
      }
      return next;
    });
  }, []);

  return <ThemeContext.Provider value={{ theme, toggle }}>
    {children}
  </ThemeContext.Provider>;
}

export function useTheme(): ThemeValue {
  return useContext(ThemeContext);
}
