using Kawa.Dataflow.Cli.Configuration;
using Kawa.Dataflow.Cli.Events;

namespace Kawa.Dataflow.Cli.Handlers;

/// <summary>Builds the handler each validated <see cref="HandlerOptions"/> describes.</summary>
internal static class HandlerFactory
{
    /// <summary>The handler for <paramref name="options"/>.</summary>
    /// <param name="options">Validated options.</param>
    /// <param name="timeProvider">The clock for time-stamping handlers.</param>
    public static IHandler<EventRecord, EventRecord> Create(HandlerOptions options, TimeProvider? timeProvider = null) => options switch
    {
        ParseHandlerOptions parse => ParseHandler.From(parse),
        FilterHandlerOptions filter => FilterHandler.From(filter),
        FieldsHandlerOptions fields => new FieldsHandler(fields, timeProvider),
        _ => throw new ArgumentException($"unknown handler type '{options?.Type}'", nameof(options)),
    };
}
