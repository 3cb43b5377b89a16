import type { DataFrame } from '@grafana/data';
import { Select, Table } from '@grafana/ui';
import { useState } from 'react';

interface Props {
  frames: DataFrame[];
  width: number;
  height: number;
}

/** A table panel as Grafana's: @grafana/ui's Table on one frame, with a picker when there are several. */
export function TableViz({ frames, width, height }: Props) {
  const [index, setIndex] = useState(0);
  const frame = frames[Math.min(index, frames.length - 1)];
  if (!frame) return null;
  if (frames.length === 1) return <Table data={frame} width={width} height={height} />;
  const pickerHeight = 36;
  return (
    <div>
      <Table data={frame} width={width} height={height - pickerHeight} />
      <div style={{ paddingTop: 4 }}>
        <Select
          aria-label="Frame"
          value={Math.min(index, frames.length - 1)}
          options={frames.map((f, i) => ({
            value: i,
            label: `${f.name ?? f.refId ?? 'Series'} (${f.length} rows)`,
          }))}
          onChange={(option) => setIndex(option.value ?? 0)}
        />
      </div>
    </div>
  );
}
