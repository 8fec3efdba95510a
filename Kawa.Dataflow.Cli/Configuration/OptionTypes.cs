namespace Kawa.Dataflow.Cli.Configuration;

/// <summary>The <c>type</c> values of each polymorphic options family and the class each one binds to.</summary>
internal static class OptionTypes
{
    /// <summary>One family: what it is called in messages and its types in documentation order.</summary>
    internal sealed record Family(string Noun, IReadOnlyList<KeyValuePair<string, Type>> Types)
    {
        /// <summary>The type values, comma-separated, for "expected one of".</summary>
        public string Expected => string.Join(", ", Types.Select(t => t.Key));

        /// <summary>The class for a type value (case-insensitive), or <see langword="null"/>.</summary>
        public KeyValuePair<string, Type>? Find(string value)
        {
            foreach (var t in Types)
            {
                if (string.Equals(t.Key, value, StringComparison.OrdinalIgnoreCase))
                {
                    return t;
                }
            }

            return null;
        }
    }

    /// <summary>Sources.</summary>
    public static readonly Family Sources = new("source",
    [
        new("nats-jetstream", typeof(NatsJetStreamSourceOptions)),
        new("nats", typeof(NatsSourceOptions)),
        new("file", typeof(FileSourceOptions)),
        new("stdin", typeof(StdinSourceOptions)),
    ]);

    /// <summary>Handlers.</summary>
    public static readonly Family Handlers = new("handler",
    [
        new("parse", typeof(ParseHandlerOptions)),
        new("filter", typeof(FilterHandlerOptions)),
        new("fields", typeof(FieldsHandlerOptions)),
    ]);

    /// <summary>Destinations (also the dead-letter destination).</summary>
    public static readonly Family Destinations = new("destination",
    [
        new("parquet", typeof(ParquetDestinationOptions)),
        new("nats-jetstream", typeof(NatsJetStreamDestinationOptions)),
        new("stdout", typeof(StdoutDestinationOptions)),
    ]);

    /// <summary>The family of an abstract options base class, or <see langword="null"/>.</summary>
    public static Family? Of(Type type) =>
        type == typeof(SourceOptions) ? Sources
        : type == typeof(HandlerOptions) ? Handlers
        : type == typeof(KawaDestinationOptions) ? Destinations
        : null;
}
