using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Kawa.Dataflow.Cli.Monitoring;

/// <summary>
/// Listens to the Kawa meters (<c>Kawa.Dataflow</c>: pipeline and lake; <c>Kawa.Dataflow.Nats</c>) with a
/// <see cref="MeterListener"/> and keeps running totals per instrument and tag set, for the status line, the final
/// summary and the Prometheus endpoint.
/// </summary>
/// <remarks>Counters and up-down counters keep their sum; histograms keep count and sum. Thread-safe.</remarks>
internal sealed class MetricsCollector : IDisposable
{
    private static readonly string[] s_meters = [Telemetry.MeterName, "Kawa.Dataflow.Nats", CliTelemetry.MeterName];

    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<(string Name, string Labels), Series> _series = new();

    /// <summary>Starts listening.</summary>
    public MetricsCollector()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (Array.IndexOf(s_meters, instrument.Meter.Name) >= 0)
            {
                listener.EnableMeasurementEvents(instrument, new TagSetCache());
            }
        };
        _listener.SetMeasurementEventCallback<long>((i, v, tags, state) => Record(i, v, tags, state));
        _listener.SetMeasurementEventCallback<int>((i, v, tags, state) => Record(i, v, tags, state));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, state) => Record(i, v, tags, state));
        _listener.Start();
    }

    /// <summary>Takes a reading of the observable instruments (such as <see cref="CliTelemetry.UnmappedFieldsName"/>) now.</summary>
    public void RecordObservables() => _listener.RecordObservableInstruments();

    /// <summary>The sum of an instrument over all its tag sets (0 if never recorded).</summary>
    public double Total(string instrument)
    {
        double total = 0;
        foreach (var (key, series) in _series)
        {
            if (key.Name == instrument)
            {
                total += series.Sum;
            }
        }

        return total;
    }

    /// <summary>Sets a gauge that no instrument reports (such as a consumer lag probed from a server).</summary>
    /// <param name="name">The gauge's name.</param>
    /// <param name="description">Its help text.</param>
    /// <param name="value">Its current value.</param>
    public void SetGauge(string name, string description, double value)
        => _series.GetOrAdd((name, string.Empty), static (_, d) => new Series(SeriesKind.Gauge, d), description).Set(value);

    /// <summary>Writes every series in the Prometheus text exposition format (version 0.0.4).</summary>
    public void WritePrometheus(TextWriter writer)
    {
        RecordObservables();
        foreach (var group in _series.OrderBy(s => s.Key.Name, StringComparer.Ordinal).ThenBy(s => s.Key.Labels, StringComparer.Ordinal).GroupBy(s => s.Key.Name))
        {
            var first = group.First().Value;
            var name = PrometheusName(group.Key);
            switch (first.Kind)
            {
                case SeriesKind.Counter:
                    writer.Write($"# HELP {name}_total {first.Description}\n# TYPE {name}_total counter\n");
                    foreach (var (key, series) in group)
                    {
                        writer.Write($"{name}_total{Braces(key.Labels)} {Number(series.Sum)}\n");
                    }

                    break;
                case SeriesKind.Gauge:
                    writer.Write($"# HELP {name} {first.Description}\n# TYPE {name} gauge\n");
                    foreach (var (key, series) in group)
                    {
                        writer.Write($"{name}{Braces(key.Labels)} {Number(series.Sum)}\n");
                    }

                    break;
                default:
                    writer.Write($"# HELP {name} {first.Description}\n# TYPE {name} summary\n");
                    foreach (var (key, series) in group)
                    {
                        writer.Write($"{name}_sum{Braces(key.Labels)} {Number(series.Sum)}\n{name}_count{Braces(key.Labels)} {series.Count}\n");
                    }

                    break;
            }
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _listener.Dispose();

    private void Record<T>(Instrument instrument, T value, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
        where T : struct, IConvertible
    {
        // Measurements come per message (acked, in flight): find the series of a tag set seen before without building
        // its label text again; only a new tag set pays for the labels and the dictionary.
        var cache = state as TagSetCache;
        var series = cache?.Find(tags);
        if (series is null)
        {
            series = _series.GetOrAdd((instrument.Name, Labels(tags)), static (_, i) => new Series(i), instrument);
            cache?.Remember(tags, series);
        }

        // An observable counter reports its running total each time it is observed: keep the latest, do not add.
        if (instrument.IsObservable)
        {
            series.Set(value.ToDouble(CultureInfo.InvariantCulture));
        }
        else
        {
            series.Add(value.ToDouble(CultureInfo.InvariantCulture));
        }
    }

    private static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.IsEmpty)
        {
            return string.Empty;
        }

        var sorted = tags.ToArray();
        Array.Sort(sorted, static (a, b) => string.CompareOrdinal(a.Key, b.Key));
        var builder = new StringBuilder();
        foreach (var (key, value) in sorted)
        {
            if (builder.Length > 0)
            {
                builder.Append(',');
            }

            builder.Append(PrometheusName(key)).Append("=\"");
            foreach (var c in Convert.ToString(value, CultureInfo.InvariantCulture) ?? string.Empty)
            {
                builder.Append(c switch { '\\' => "\\\\", '"' => "\\\"", '\n' => "\\n", _ => c.ToString() });
            }

            builder.Append('"');
        }

        return builder.ToString();
    }

    private static string Braces(string labels) => labels.Length == 0 ? string.Empty : "{" + labels + "}";

    private static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>Prometheus names allow <c>[a-zA-Z_:][a-zA-Z0-9_:]*</c>: dots and dashes become underscores.</summary>
    internal static string PrometheusName(string name)
    {
        var chars = name.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (!(char.IsAsciiLetterOrDigit(chars[i]) || chars[i] is '_' or ':'))
            {
                chars[i] = '_';
            }
        }

        return new string(chars);
    }

    /// <summary>
    /// One instrument's tag sets already seen, each with its series: copy-on-write, so the per-measurement lookup takes
    /// no lock and allocates nothing. Bounded: past <see cref="MaxEntries"/> tag sets (high cardinality) new ones take
    /// the slower path through the labels text.
    /// </summary>
    private sealed class TagSetCache
    {
        private const int MaxEntries = 32;
        private readonly Lock _gate = new();
        private (KeyValuePair<string, object?>[] Tags, Series Series)[] _entries = [];

        public Series? Find(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            foreach (var (known, series) in Volatile.Read(ref _entries))
            {
                if (SameTags(known, tags))
                {
                    return series;
                }
            }

            return null;
        }

        public void Remember(ReadOnlySpan<KeyValuePair<string, object?>> tags, Series series)
        {
            lock (_gate)
            {
                if (_entries.Length < MaxEntries && Find(tags) is null)
                {
                    _entries = [.. _entries, (tags.ToArray(), series)];
                }
            }
        }

        // Same keys and values in the same order: the same call site reports its tags in a fixed order. A different
        // order only misses the cache (and adds an entry); the labels text, which is sorted, still finds the one series.
        private static bool SameTags(KeyValuePair<string, object?>[] known, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (known.Length != tags.Length)
            {
                return false;
            }

            for (var i = 0; i < known.Length; i++)
            {
                if (!string.Equals(known[i].Key, tags[i].Key, StringComparison.Ordinal) || !Equals(known[i].Value, tags[i].Value))
                {
                    return false;
                }
            }

            return true;
        }
    }

    private enum SeriesKind
    {
        Counter,
        Gauge,
        Summary,
    }

    private sealed class Series
    {
        private readonly Lock _gate = new();
        private double _sum;
        private long _count;

        public Series(Instrument instrument)
        {
            var type = instrument.GetType().Name;
            Kind = type.StartsWith("UpDownCounter", StringComparison.Ordinal) ? SeriesKind.Gauge
                : type.StartsWith("Counter", StringComparison.Ordinal) || type.StartsWith("ObservableCounter", StringComparison.Ordinal) ? SeriesKind.Counter
                : SeriesKind.Summary;
            Description = (instrument.Description ?? instrument.Name).Replace('\n', ' ');
        }

        public Series(SeriesKind kind, string description)
        {
            Kind = kind;
            Description = description.Replace('\n', ' ');
        }

        public SeriesKind Kind { get; }

        public string Description { get; }

        public double Sum
        {
            get
            {
                lock (_gate)
                {
                    return _sum;
                }
            }
        }

        public long Count
        {
            get
            {
                lock (_gate)
                {
                    return _count;
                }
            }
        }

        public void Add(double value)
        {
            lock (_gate)
            {
                _sum += value;
                _count++;
            }
        }

        public void Set(double value)
        {
            lock (_gate)
            {
                _sum = value;
                _count = 1;
            }
        }
    }
}
