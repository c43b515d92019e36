import { useEffect, useState } from 'react';
import { authState, subscribeAuth, type AuthState } from '../api/auth';

/* the key prompt, the stored key and the last 403, as React state */
export function useAuth(): AuthState {
  const [s, setS] = useState<AuthState>(authState);
  useEffect(() => {
    setS(authState());
    return subscribeAuth(setS);
  }, []);
  return s;
}
