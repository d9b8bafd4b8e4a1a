/** Typed events a pipeline emits; the CLI renders them, --json prints them as lines, the log records them. */
export type PipelineEvent =
  | { type: 'step.start'; step: string; title: string; index: number; total: number }
  | { type: 'step.progress'; step: string; done: number; total?: number; unit: string }
  | { type: 'step.info'; step: string; message: string }
  | { type: 'step.done'; step: string; title: string; durationMs: number }
  | { type: 'step.failed'; step: string; title: string; durationMs: number; error: string }
  | { type: 'undo.start'; count: number }
  | { type: 'undo.done'; what: string; durationMs: number }
  | { type: 'undo.failed'; what: string; error: string }
  | { type: 'pipeline.done'; durationMs: number }
  | { type: 'pipeline.failed'; durationMs: number; error: string; undone: number; undoFailures: number };

export type EventSink = (e: PipelineEvent) => void;
