// Audio player with a waveform (wavesurfer.js, BSD-3-Clause) and time-segment regions.
import WaveSurfer from "wavesurfer.js";
import RegionsPlugin from "wavesurfer.js/plugins/regions";
import type { Segment } from "./widgets";

const REGION_COLOURS = ["rgba(79,70,229,0.25)", "rgba(220,38,38,0.22)", "rgba(5,150,105,0.22)", "rgba(217,119,6,0.25)"];

export interface PlayerEvents {
  onSegmentDrawn(start: number, end: number): void;
  onSegmentMoved(index: number, start: number, end: number): void;
  onTime(seconds: number, duration: number): void;
  onState(playing: boolean): void;
  onError(): void;
}

export interface LoadedAudio {
  url: string;
  peaks: Float32Array;
  duration: number;
}

const PEAK_POINTS = 4000;

/**
 * Fetch an audio file once and draw from it locally: the player gets a blob URL (which can always seek, even when
 * the server ignores Range requests) and the waveform gets precomputed peaks, so wavesurfer makes no fetch of its
 * own (the Content-Security-Policy keeps blob: out of connect-src).
 */
export async function loadAudio(url: string): Promise<LoadedAudio> {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`audio HTTP ${response.status}`);
  const blob = await response.blob();
  const decoded = await new OfflineAudioContext(1, 1, 22050).decodeAudioData(await blob.arrayBuffer());
  const samples = decoded.getChannelData(0);
  const points = Math.min(PEAK_POINTS, samples.length);
  const peaks = new Float32Array(points);
  const per = samples.length / points;
  for (let i = 0; i < points; i++) {
    let peak = 0;
    const end = Math.min(samples.length, Math.floor((i + 1) * per));
    for (let j = Math.floor(i * per); j < end; j++) peak = Math.max(peak, Math.abs(samples[j]));
    peaks[i] = peak;
  }
  return { url: URL.createObjectURL(blob), peaks, duration: decoded.duration };
}

export class Player {
  private wave: WaveSurfer;
  private regions: ReturnType<typeof RegionsPlugin.create>;
  private syncing = false;
  private labels: string[] = [];

  constructor(container: HTMLElement, audio: LoadedAudio, private events: PlayerEvents, segmentsEnabled: boolean) {
    this.regions = RegionsPlugin.create();
    this.wave = WaveSurfer.create({
      container,
      url: audio.url,
      peaks: [audio.peaks],
      duration: audio.duration,
      height: 72,
      waveColor: "#a5b4fc",
      progressColor: "#4338ca",
      cursorColor: "#111827",
      barWidth: 2,
      barGap: 1,
      barRadius: 2,
      normalize: true,
      plugins: [this.regions],
    });
    if (segmentsEnabled) this.regions.enableDragSelection({ color: REGION_COLOURS[0] });
    this.regions.on("region-created", (region) => {
      if (this.syncing) return;
      const { start, end } = region;
      region.remove();
      this.events.onSegmentDrawn(start, end);
    });
    this.regions.on("region-updated", (region) => {
      const index = Number(region.id.replace("seg-", ""));
      if (!Number.isNaN(index)) this.events.onSegmentMoved(index, region.start, region.end);
    });
    this.wave.on("timeupdate", (time) => this.events.onTime(time, this.wave.getDuration()));
    this.wave.on("ready", () => this.events.onTime(0, this.wave.getDuration()));
    this.wave.on("play", () => this.events.onState(true));
    this.wave.on("pause", () => this.events.onState(false));
    this.wave.on("finish", () => this.events.onState(false));
    this.wave.on("error", () => this.events.onError());
  }

  setLabels(labels: string[]): void {
    this.labels = labels;
  }

  showSegments(segments: Segment[], editable: boolean): void {
    this.syncing = true;
    try {
      this.regions.clearRegions();
      segments.forEach((seg, i) => {
        const colour = REGION_COLOURS[Math.max(0, this.labels.indexOf(seg.label)) % REGION_COLOURS.length];
        const content = document.createElement("span");
        content.className = "region-label";
        content.textContent = seg.label; // text only: labels come from the schema, which users write
        this.regions.addRegion({
          id: `seg-${i}`,
          start: seg.start,
          end: seg.end,
          color: colour,
          content,
          drag: editable,
          resize: editable,
        });
      });
    } finally {
      this.syncing = false;
    }
  }

  playPause(): void {
    void this.wave.playPause();
  }

  replay(): void {
    this.wave.setTime(0);
    void this.wave.play();
  }

  seekBy(seconds: number): void {
    this.wave.setTime(Math.max(0, Math.min(this.wave.getDuration(), this.wave.getCurrentTime() + seconds)));
  }

  setSpeed(rate: number): void {
    this.wave.setPlaybackRate(rate, true);
  }

  get currentTime(): number {
    return this.wave.getCurrentTime();
  }

  get duration(): number {
    return this.wave.getDuration();
  }

  destroy(): void {
    this.wave.destroy();
  }
}
