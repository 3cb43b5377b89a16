import {
  type DataFrame,
  type FieldConfigSource,
  type FieldDisplay,
  ReducerID,
  getFieldDisplayValues,
} from '@grafana/data';
import {
  BigValue,
  BigValueColorMode,
  BigValueGraphMode,
  BigValueJustifyMode,
  BigValueTextMode,
  useTheme2,
} from '@grafana/ui';
import { testIds } from '../../../testIds';
import { useServices } from '../services';

interface Props {
  frames: DataFrame[];
  fieldConfig: FieldConfigSource;
  width: number;
  height: number;
  timeZone: string;
  /** Which fields to show, as Grafana's "Fields" reduce option: a name or a /regex/; numeric fields by default. */
  fields?: string;
}

/**
 * A stat panel as Grafana's: every numeric field reduced to its last non-null value, shown by
 * @grafana/ui's BigValue with the background coloured by the thresholds.
 */
export function StatViz({ frames, fieldConfig, width, height, timeZone, fields }: Props) {
  const theme = useTheme2();
  const { templateSrv } = useServices();
  const values: FieldDisplay[] = getFieldDisplayValues({
    data: frames,
    fieldConfig,
    reduceOptions: { calcs: [ReducerID.lastNotNull], values: false, ...(fields ? { fields } : {}) },
    replaceVariables: (value, scopedVars, format) => templateSrv.replace(value, scopedVars, format),
    theme,
    timeZone,
  });
  const each = Math.max(1, values.length);
  return (
    <div style={{ display: 'flex', gap: 4 }}>
      {values.map((value, i) => (
        <div
          key={`${value.name}-${i}`}
          data-testid={testIds.stat}
          data-name={value.display.title ?? value.name}
          data-value={value.display.numeric}
          data-color={value.display.color}
        >
          <BigValue
            theme={theme}
            value={value.display}
            width={Math.floor((width - (each - 1) * 4) / each)}
            height={height}
            colorMode={BigValueColorMode.Background}
            graphMode={BigValueGraphMode.None}
            justifyMode={BigValueJustifyMode.Center}
            textMode={each > 1 ? BigValueTextMode.ValueAndName : BigValueTextMode.Value}
          />
        </div>
      ))}
    </div>
  );
}
