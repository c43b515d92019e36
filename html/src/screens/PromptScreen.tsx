import { useEffect, useRef, useState } from 'react';
import { Button, FileUploaderButton, FileUploaderItem, InlineNotification,
         TextArea } from '@carbon/react';
import { Send, TrashCan } from '@carbon/icons-react';
import { useI18n, type MessageKey } from '../i18n';
import { cancelWorkflow, submitWorkflow } from '../api/client';
import type { ContextFile } from '../api/types';
import { ComplexityTag } from '../components/ComplexityTag';
import { ACCEPT, addFiles, type FileProblem } from '../components/contextFiles';
import { WorkflowGraph } from '../components/WorkflowGraph';
import { AgentTiles } from '../components/AgentTiles';
import { LogPanel } from '../components/LogPanel';
import { ConnectionBadge } from '../components/ConnectionBadge';
import { useWorkflowStream } from '../live/useWorkflowStream';
import { isFinal } from '../live/workflowState';
import { useNotifications } from '../notifications';
import { useUserId } from '../user';

const CURRENT_KEY = 'maestro.current';

function savedCurrent(): string | null {
  try {
    return sessionStorage.getItem(CURRENT_KEY);
  } catch {
    return null;
  }
}

export function PromptScreen() {
  const { t } = useI18n();
  const { notify } = useNotifications();
  const [userId] = useUserId();
  const [prompt, setPrompt] = useState('');
  const [files, setFiles] = useState<ContextFile[]>([]);
  const [problems, setProblems] = useState<FileProblem[]>([]);
  const [sending, setSending] = useState(false);
  const [submitError, setSubmitError] = useState<string | null>(null);
  const [invalid, setInvalid] = useState(false);
  const [current, setCurrent] = useState<string | null>(savedCurrent);
  const live = useWorkflowStream(current);
  const announced = useRef<string>('');

  useEffect(() => {
    try {
      if (current) {
        sessionStorage.setItem(CURRENT_KEY, current);
      } else {
        sessionStorage.removeItem(CURRENT_KEY);
      }
    } catch {
      /* storage disabled */
    }
  }, [current]);

  /* a notification in the header when the workflow ends */
  useEffect(() => {
    if (!live.id || !isFinal(live.status)) {
      return;
    }
    const key = `${live.id}:${live.status}`;
    if (announced.current === key) {
      return;
    }
    announced.current = key;
    notify({
      kind: live.status === 'complete' ? 'success'
        : live.status === 'failed' ? 'error' : 'warning',
      title: t(live.status === 'complete' ? 'prompt.done'
        : live.status === 'failed' ? 'prompt.failed' : 'prompt.cancelled'),
      subtitle: live.id,
    });
  }, [live.id, live.status, notify, t]);

  const send = async () => {
    if (!prompt.trim()) {
      setInvalid(true);
      return;
    }
    setInvalid(false);
    setSending(true);
    setSubmitError(null);
    try {
      const body = {
        prompt,
        ...(files.length ? { context: files } : {}),
        ...(userId.trim() ? { user_id: userId.trim() } : {}),
      };
      const r = await submitWorkflow(body);
      announced.current = '';
      setCurrent(r.id);
      notify({ kind: 'info', title: t('prompt.processing'), subtitle: r.id });
    } catch (e) {
      setSubmitError((e as Error).message);
    } finally {
      setSending(false);
    }
  };

  const clear = () => {
    setPrompt('');
    setFiles([]);
    setProblems([]);
    setSubmitError(null);
    setInvalid(false);
    setCurrent(null);
  };

  const onFiles = async (list: FileList | null) => {
    if (!list) {
      return;
    }
    const r = await addFiles(files, Array.from(list));
    setFiles(r.files);
    setProblems(r.problems);
  };

  const running = live.id !== null && !isFinal(live.status);
  const answer = live.result ?? live.answer;
  const statusText = live.status
    ? t(`status.${live.status}` as MessageKey) : t('status.queued');

  return <div className="mst-screen">
    <h1 className="mst-h1" tabIndex={-1} id="main-heading">
      {t('prompt.title')}
    </h1>
    <div className="mst-prompt">
      <form className="mst-prompt__form" onSubmit={(e) => {
        e.preventDefault();
        void send();
      }}>
        <TextArea id="prompt" labelText={t('prompt.label')}
                  helperText={t('prompt.help')}
                  placeholder={t('prompt.placeholder')} rows={6}
                  value={prompt} invalid={invalid}
                  invalidText={t('prompt.empty')}
                  onChange={(e) => {
                    setPrompt(e.target.value);
                    if (invalid && e.target.value.trim()) {
                      setInvalid(false);
                    }
                  }}
                  onKeyDown={(e) => {
                    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
                      e.preventDefault();
                      void send();
                    }
                  }} />
        <ComplexityTag text={prompt} />

        <fieldset className="mst-files">
          <legend className="cds--label">{t('prompt.files.title')}</legend>
          <p className="cds--form__helper-text" id="files-help">
            {t('prompt.files.help')}
          </p>
          <FileUploaderButton labelText={t('prompt.files.add')} multiple
                              accept={ACCEPT} size="md"
                              buttonKind="tertiary" disableLabelChanges
                              id="context-files"
                              aria-describedby="files-help"
                              onChange={(e: React.ChangeEvent<
                                HTMLInputElement>) => {
                                void onFiles(e.target.files);
                                e.target.value = '';
                              }} />
          {problems.length > 0 && <ul className="mst-files__problems"
                                      role="alert">
            {problems.map((p) => <li key={`${p.kind}-${p.name}`}>
              {t(p.kind === 'total' ? 'prompt.files.total'
                : p.kind === 'tooBig' ? 'prompt.files.tooBig'
                  : 'prompt.files.badType', { name: p.name })}
            </li>)}
          </ul>}
          {files.length > 0 && <ul className="mst-files__list">
            {files.map((f) => <li key={f.name}>
              <FileUploaderItem name={f.name} status="edit" size="md"
                                uuid={f.name}
                                iconDescription={t('prompt.files.remove',
                                                   { name: f.name })}
                                onDelete={() => setFiles((all) =>
                                  all.filter((x) => x.name !== f.name))} />
            </li>)}
          </ul>}
        </fieldset>

        <div className="mst-actions">
          <Button type="submit" renderIcon={Send} disabled={sending}>
            {t('prompt.send')}
          </Button>
          <Button kind="secondary" renderIcon={TrashCan} onClick={clear}
                  type="button">
            {t('prompt.clear')}
          </Button>
          {running && live.id && <Button kind="ghost" type="button"
            onClick={() => { void cancelWorkflow(live.id as string)
              .catch(() => {}); }}>
            {t('prompt.cancel')}
          </Button>}
        </div>
      </form>

      <div className="mst-prompt__status" aria-live="polite">
        {submitError && <InlineNotification kind="error" lowContrast
          title={t('prompt.submitError')} subtitle={submitError}
          onCloseButtonClick={() => setSubmitError(null)} />}
        {live.id && running && <InlineNotification kind="info" lowContrast
          hideCloseButton role="status" title={t('prompt.processing')}
          subtitle={t('prompt.processing.sub', { id: live.id,
            status: statusText, progress: Math.round(live.progress) })} />}
        {live.id && live.status === 'complete' && <InlineNotification
          kind="success" lowContrast role="status" hideCloseButton
          title={t('prompt.done')}
          subtitle={t('prompt.done.sub', { id: live.id })} />}
        {live.id && live.status === 'failed' && <InlineNotification
          kind="error" lowContrast role="status" hideCloseButton
          title={t('prompt.failed')} subtitle={live.error ?? live.id} />}
        {live.id && live.status === 'cancelled' && <InlineNotification
          kind="warning" lowContrast role="status" hideCloseButton
          title={t('prompt.cancelled')} subtitle={live.id} />}
      </div>
    </div>

    <section className="mst-section" aria-labelledby="answer-title">
      <div className="mst-section__head">
        <h2 className="mst-h2" id="answer-title">{t('prompt.answer')}</h2>
        {live.id && <ConnectionBadge state={live.connection}
                                     transport={live.transport}
                                     failure={live.failure} />}
      </div>
      <div className="mst-answer" id="answer" tabIndex={0}
           aria-labelledby="answer-title" aria-busy={running}
           data-final={live.result !== null ? 'true' : 'false'}>
        {answer
          ? answer
          : <span className="mst-muted">{running
            ? t('prompt.answer.streaming') : t('prompt.answer.waiting')}</span>}
      </div>
    </section>

    {live.id && <section className="mst-section"
                          aria-labelledby="progress-title">
      <h2 className="mst-h2" id="progress-title">{t('prompt.progress')}</h2>
      <WorkflowGraph state={live} />
      <AgentTiles state={live} />
      <LogPanel entries={live.logs} id="prompt-log" />
    </section>}
  </div>;
}
