using Kawa.Dataflow.Cli.Configuration;
using Kawa.Dataflow.Cli.Events;

namespace Kawa.Dataflow.Cli.Handlers;

/// <summary>
/// The <c>fields</c> handler: renames, drops, adds constants, then stamps the ingest time and host name, in that order,
/// on the record in place.
/// </summary>
/// <remarks>
/// Renaming or dropping a field the record lacks is not an error (records vary); renaming onto an existing name
/// replaces it. Time comes from the injected <see cref="TimeProvider"/> (UTC). Never throws on data.
/// </remarks>
internal sealed class FieldsHandler : IHandler<EventRecord, EventRecord>
{
    private readonly KeyValuePair<string, string>[] _rename;
    private readonly string[] _drop;
    private readonly KeyValuePair<string, FieldValue>[] _add;
    private readonly string? _ingestTime;
    private readonly string? _hostNameField;
    private readonly FieldValue _hostName;
    private readonly TimeProvider _time;

    /// <summary>Creates the handler.</summary>
    /// <param name="options">What to do.</param>
    /// <param name="timeProvider">The clock for <see cref="FieldsHandlerOptions.IngestTime"/>; default <see cref="TimeProvider.System"/>.</param>
    /// <param name="hostName">The host name to stamp; default <see cref="Environment.MachineName"/>.</param>
    public FieldsHandler(FieldsHandlerOptions options, TimeProvider? timeProvider = null, string? hostName = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _rename = [.. options.Rename];
        _drop = [.. options.Drop];
        _add = options.Add.Select(a => new KeyValuePair<string, FieldValue>(a.Key, FieldValue.From(a.Value))).ToArray();
        _ingestTime = options.IngestTime;
        _hostNameField = options.HostName;
        _hostName = FieldValue.From(hostName ?? Environment.MachineName);
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <inheritdoc/>
    public ValueTask<Messages<EventRecord>> HandleAsync(Message<EventRecord> message, CancellationToken cancellationToken = default)
    {
        var record = message.Value;
        foreach (var (from, to) in _rename)
        {
            record.Rename(from, to);
        }

        foreach (var name in _drop)
        {
            record.Remove(name);
        }

        foreach (var (name, value) in _add)
        {
            record.Set(name, value);
        }

        if (_ingestTime is not null)
        {
            record.Set(_ingestTime, _time.GetUtcNow());
        }

        if (_hostNameField is not null)
        {
            record.Set(_hostNameField, _hostName);
        }

        return new(message);
    }
}
