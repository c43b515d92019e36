import { createContext, useCallback, useContext, useMemo, useState,
         type ReactNode } from 'react';

export interface Note {
  id: number;
  kind: 'info' | 'success' | 'error' | 'warning';
  title: string;
  subtitle?: string;
  time: number;
  read: boolean;
}

interface NotesValue {
  notes: Note[];
  notify: (n: Omit<Note, 'id' | 'time' | 'read'>) => void;
  markRead: () => void;
  clear: () => void;
}

const NotesContext = createContext<NotesValue>({
  notes: [], notify: () => {}, markRead: () => {}, clear: () => {},
});

let seq = 0;

export function NotificationsProvider({ children }: { children: ReactNode }) {
  const [notes, setNotes] = useState<Note[]>([]);
  const notify = useCallback((n: Omit<Note, 'id' | 'time' | 'read'>) => {
    setNotes((all) => [{ ...n, id: ++seq, time: Date.now(), read: false },
                       ...all].slice(0, 50));
  }, []);
  const markRead = useCallback(() => {
    setNotes((all) => (all.some((n) => !n.read)
      ? all.map((n) => ({ ...n, read: true })) : all));
  }, []);
  const clear = useCallback(() => setNotes([]), []);
  const value = useMemo(() => ({ notes, notify, markRead, clear }),
                        [notes, notify, markRead, clear]);
  return <NotesContext.Provider value={value}>{children}</NotesContext.Provider>;
}

export function useNotifications(): NotesValue {
  return useContext(NotesContext);
}
