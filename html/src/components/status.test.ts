import { describe, expect, it } from 'vitest';
import { contrast, STATUS_COLORS, statusColor, textOn,
         WORKFLOW_STATUS_COLORS } from './status';

describe('status colours', () => {
  it('are the ones the design asks for', () => {
    expect(STATUS_COLORS).toEqual({
      planning: '#0f62fe', executing: '#42be65', waiting: '#f1c21b',
      error: '#da1e28', complete: '#24a148', idle: '#525252',
    });
  });

  it('get a text colour with at least 4.5:1 contrast (WCAG AA)', () => {
    for (const bg of [...Object.values(STATUS_COLORS),
                      ...Object.values(WORKFLOW_STATUS_COLORS)]) {
      expect(contrast(bg, textOn(bg)), bg).toBeGreaterThanOrEqual(4.5);
    }
  });

  it('falls back to idle grey', () => {
    expect(statusColor('nonsense')).toBe('#525252');
    expect(statusColor('running')).toBe('#0f62fe');
  });
});
