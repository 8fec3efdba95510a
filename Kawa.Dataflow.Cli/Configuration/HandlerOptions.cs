namespace Kawa.Dataflow.Cli.Configuration;

/// <summary>A handler stage; <see cref="Type"/> picks the concrete options class.</summary>
internal abstract class HandlerOptions
{
    /// <summary><c>parse</c>, <c>filter</c> or <c>fields</c>. Required.</summary>
    public string Type { get; set; } = string.Empty;

    /// <summary>The stage's name in metrics, logs and dead letters. Default <c>&lt;type&gt;-&lt;index&gt;</c>; unique.</summary>
    public string? Name { get; set; }

    /// <summary>Messages handled at once. Default 1; 1–1024.</summary>
    public int Parallelism { get; set; } = 1;

    /// <summary>The stage's input buffer (its Dataflow bounded capacity). Default 1,000; 1–1,000,000.</summary>
    public int Capacity { get; set; } = 1000;

    /// <summary>
    /// Outputs leave the stage in the order messages arrived, even with parallelism. Default true. <c>false</c> lets a
    /// parallel stage pass each output on as soon as it is ready; on every handler at one parallelism of 2 or more (with a
    /// Parquet or JetStream destination) the pipeline runs to completion. Ignored with <see cref="KeyOrdered"/>.
    /// </summary>
    public bool Ordered { get; set; } = true;

    /// <summary>Never run two messages with the same key at once (keeps per-key order with parallelism). Default false.</summary>
    public bool KeyOrdered { get; set; }

    /// <summary>What happens when the handler throws. Default fatal.</summary>
    public ErrorPolicyOptions ErrorPolicy { get; set; } = new();

    /// <summary>This stage's own dead-letter destination (any destination type), for its <c>deadLetter</c> error policy
    /// and its poison messages. Default none: the stage uses <c>pipeline.deadLetter</c>.</summary>
    public KawaDestinationOptions? DeadLetter { get; set; }
}

/// <summary>A stage's error policy.</summary>
internal sealed class ErrorPolicyOptions
{
    /// <summary><c>fatal</c> (stop the pipeline; the message is negatively acked), <c>retry</c>, <c>nack</c>, <c>deadLetter</c> or <c>skip</c> (ack and drop). Default <c>fatal</c>.</summary>
    public string Type { get; set; } = "fatal";

    /// <summary>For <c>retry</c>: attempts in all, the first included. Default 3; 1–100.</summary>
    public int MaxAttempts { get; set; } = 3;

    /// <summary>For <c>retry</c>: the first back-off delay, doubled each attempt. Default 100 ms.</summary>
    public TimeSpan InitialDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>For <c>retry</c>: the longest back-off delay. Default 5 s.</summary>
    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>For <c>retry</c>: what to do when attempts run out: <c>fatal</c>, <c>nack</c>, <c>deadLetter</c> or <c>skip</c>. Default <c>fatal</c>.</summary>
    public string Then { get; set; } = "fatal";

    /// <summary>For <c>nack</c> (and <c>then: nack</c>): the redelivery delay asked of the source. Default 0.</summary>
    public TimeSpan NackDelay { get; set; } = TimeSpan.Zero;
}

/// <summary>Parses the raw payload into fields.</summary>
internal sealed class ParseHandlerOptions : HandlerOptions
{
    /// <summary><c>json</c> (one object per message), <c>combined</c> (Apache/nginx combined log) or <c>regex</c>. Required.</summary>
    public string? Format { get; set; }

    /// <summary>For <c>regex</c>: a .NET regular expression whose named groups become fields. Required there.</summary>
    public string? Pattern { get; set; }

    /// <summary>For <c>regex</c>: group name → <c>string</c>, <c>long</c>, <c>double</c>, <c>bool</c> or <c>timestamp</c>. Default: every group is a string.</summary>
    public Dictionary<string, string> Types { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>Keeps only the messages whose fields match; the others are acked and dropped.</summary>
internal sealed class FilterHandlerOptions : HandlerOptions
{
    /// <summary><c>all</c> (every condition holds) or <c>any</c>. Default <c>all</c>.</summary>
    public string Match { get; set; } = "all";

    /// <summary>The conditions. At least one.</summary>
    public List<FilterConditionOptions?> Conditions { get; set; } = [];
}

/// <summary>One filter condition: <c>field op value</c>.</summary>
internal sealed class FilterConditionOptions
{
    /// <summary>The field to test. Required.</summary>
    public string? Field { get; set; }

    /// <summary><c>==</c>, <c>!=</c>, <c>&lt;</c>, <c>&lt;=</c>, <c>&gt;</c>, <c>&gt;=</c>, <c>contains</c>, <c>startsWith</c> or <c>exists</c>. Required.</summary>
    public string? Op { get; set; }

    /// <summary>The value compared with (not for <c>exists</c>): numbers compare numerically with numeric fields, timestamps by instant, else ordinal text.</summary>
    public string? Value { get; set; }
}

/// <summary>Reshapes fields: rename, drop, add constants, add ingest time and host name (applied in that order).</summary>
internal sealed class FieldsHandlerOptions : HandlerOptions
{
    /// <summary>Old name → new name.</summary>
    public Dictionary<string, string> Rename { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Fields to remove.</summary>
    public List<string> Drop { get; set; } = [];

    /// <summary>Field → constant string value (replaces an existing field).</summary>
    public Dictionary<string, string> Add { get; set; } = new(StringComparer.Ordinal);

    /// <summary>A field to set to the time the handler saw the message (UTC). Default none.</summary>
    public string? IngestTime { get; set; }

    /// <summary>A field to set to this machine's host name. Default none.</summary>
    public string? HostName { get; set; }
}
