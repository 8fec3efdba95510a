using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Kawa.Dataflow.Tests.Infrastructure;

/// <summary>Collects Kawa.Dataflow measurements carrying one <c>kawa.stage</c> value, so parallel tests do not see each other's.</summary>
public sealed class MetricCollector : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentQueue<(string Instrument, double Value, string? Pipeline)> _measurements = new();
    private readonly string _stage;

    public MetricCollector(string stage)
    {
        _stage = stage;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == Telemetry.MeterName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        _listener.Start();
    }

    public IReadOnlyList<double> Values(string instrument) => [.. _measurements.Where(m => m.Instrument == instrument).Select(m => m.Value)];

    public double Sum(string instrument) => Values(instrument).Sum();

    /// <summary>The <c>kawa.pipeline</c> tag of each measurement of <paramref name="instrument"/> (null where it had none).</summary>
    public IReadOnlyList<string?> Pipelines(string instrument) => [.. _measurements.Where(m => m.Instrument == instrument).Select(m => m.Pipeline)];

    public void Dispose() => _listener.Dispose();

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var ours = false;
        string? pipeline = null;
        foreach (var tag in tags)
        {
            if (tag.Key == Telemetry.StageTag && Equals(tag.Value, _stage))
            {
                ours = true;
            }
            else if (tag.Key == Telemetry.PipelineTag)
            {
                pipeline = tag.Value as string;
            }
        }

        if (ours)
        {
            _measurements.Enqueue((instrument.Name, value, pipeline));
        }
    }
}
