import { useEffect, useRef, useState } from 'react';
import { FeatureFlags, Modal, PasswordInput } from '@carbon/react';
import { dismissPrompt, submitKey } from '../api/auth';
import { useI18n } from '../i18n';
import { useAuth } from './useAuth';

/*
 * The API key dialog (a Carbon modal: labelled by its heading, focus
 * kept inside, Escape or Cancel closes it). It opens when a request got
 * a 401 challenge (or from the header's sign-in), checks the key with
 * GET /api/v1/me, and keeps it only when the server accepts it; a
 * refused key is an error under the field and the dialog stays open.
 */
export function AuthDialog() {
  const { t } = useI18n();
  const { prompt } = useAuth();
  const [value, setValue] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const inFlight = useRef(false);
  const open = prompt !== null;

  /* focus goes back where it was when the dialog closes */
  useEffect(() => {
    if (!open) {
      return undefined;
    }
    const before = document.activeElement as HTMLElement | null;
    return () => {
      if (before && before !== document.body && document.contains(before)) {
        before.focus();
      }
    };
  }, [open]);

  useEffect(() => {
    if (open) {
      setValue('');
      setError(null);
      setBusy(false);
    }
  }, [open]);

  const submit = async () => {
    if (inFlight.current) {
      return;
    }
    inFlight.current = true;
    setBusy(true);
    setError(null);
    const r = await submitKey(value);
    inFlight.current = false;
    setBusy(false);
    if (r.ok) {
      setValue('');
      return;
    }
    const message = r.message ?? '';
    setError(r.reason === 'syntax' ? t('auth.error.syntax')
      : r.reason === 'rejected'
        ? t('auth.error.rejected', { message: message || 'unauthorized' })
        : t('auth.error.unavailable', { message: message || 'network' }));
    input.current?.focus();
    input.current?.select();
  };

  /* mounted only while open: a closed Carbon modal keeps its buttons in
     the layout (a 360 px page would scroll sideways) */
  if (!open) {
    return null;
  }
  /* Carbon's keyboard focus wrap: its default (sentinels and a blur
     timer) can leave focus on a sentinel outside the dialog */
  return <FeatureFlags enableFocusWrapWithoutSentinels>
    <Modal open size="sm" id="auth-dialog"
                modalHeading={t('auth.title')}
                primaryButtonText={busy ? t('auth.checking')
                                        : t('auth.submit')}
                secondaryButtonText={t('auth.cancel')}
                primaryButtonDisabled={busy || value.trim() === ''}
                selectorPrimaryFocus="#auth-key"
                preventCloseOnClickOutside
                onRequestSubmit={() => { void submit(); }}
                onRequestClose={() => dismissPrompt()}>
    <p className="mst-auth__intro" id="auth-intro">
      {prompt === 'rejected' ? t('auth.intro.rejected')
                             : t('auth.intro.missing')}
    </p>
    <form onSubmit={(e) => { e.preventDefault(); void submit(); }}>
      <PasswordInput id="auth-key" ref={input} labelText={t('auth.label')}
                     helperText={t('auth.helper')} value={value}
                     autoComplete="off" spellCheck={false}
                     aria-describedby="auth-intro"
                     invalid={error !== null} invalidText={error ?? ''}
                     hidePasswordLabel={t('auth.hide')}
                     showPasswordLabel={t('auth.show')}
                     onChange={(e) => setValue(e.target.value)} />
    </form>
  </Modal></FeatureFlags>;
}
