using System.Text.Json;
using System.Text.Json.Serialization;

namespace Kawa.Dataflow.Nats.JetStream;

/// <summary>Durations on the JetStream API are integer nanoseconds.</summary>
internal sealed class NanosecondsConverter : JsonConverter<TimeSpan>
{
    public override TimeSpan Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        => TimeSpan.FromTicks(reader.GetInt64() / 100);

    public override void Write(Utf8JsonWriter writer, TimeSpan value, JsonSerializerOptions options)
        => writer.WriteNumberValue(value.Ticks * 100);
}

internal sealed class NanosecondsArrayConverter : JsonConverter<TimeSpan[]>
{
    public override TimeSpan[] Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var list = new List<TimeSpan>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            list.Add(TimeSpan.FromTicks(reader.GetInt64() / 100));
        }

        return [.. list];
    }

    public override void Write(Utf8JsonWriter writer, TimeSpan[] value, JsonSerializerOptions options)
    {
        writer.WriteStartArray();
        foreach (var item in value)
        {
            writer.WriteNumberValue(item.Ticks * 100);
        }

        writer.WriteEndArray();
    }
}

[JsonConverter(typeof(JsonStringEnumConverter<RetentionPolicy>))]
internal enum RetentionPolicy
{
    [JsonStringEnumMemberName("limits")] Limits,
    [JsonStringEnumMemberName("interest")] Interest,
    [JsonStringEnumMemberName("workqueue")] WorkQueue,
}

[JsonConverter(typeof(JsonStringEnumConverter<StorageType>))]
internal enum StorageType
{
    [JsonStringEnumMemberName("file")] File,
    [JsonStringEnumMemberName("memory")] Memory,
}

[JsonConverter(typeof(JsonStringEnumConverter<DiscardPolicy>))]
internal enum DiscardPolicy
{
    [JsonStringEnumMemberName("old")] Old,
    [JsonStringEnumMemberName("new")] New,
}

[JsonConverter(typeof(JsonStringEnumConverter<AckPolicy>))]
internal enum AckPolicy
{
    [JsonStringEnumMemberName("explicit")] Explicit,
    [JsonStringEnumMemberName("none")] None,
    [JsonStringEnumMemberName("all")] All,
}

[JsonConverter(typeof(JsonStringEnumConverter<DeliverPolicy>))]
internal enum DeliverPolicy
{
    [JsonStringEnumMemberName("all")] All,
    [JsonStringEnumMemberName("last")] Last,
    [JsonStringEnumMemberName("new")] New,
    [JsonStringEnumMemberName("by_start_sequence")] ByStartSequence,
    [JsonStringEnumMemberName("by_start_time")] ByStartTime,
    [JsonStringEnumMemberName("last_per_subject")] LastPerSubject,
}

[JsonConverter(typeof(JsonStringEnumConverter<ReplayPolicy>))]
internal enum ReplayPolicy
{
    [JsonStringEnumMemberName("instant")] Instant,
    [JsonStringEnumMemberName("original")] Original,
}

internal sealed class ApiError
{
    public int Code { get; set; }

    public int ErrCode { get; set; }

    public string? Description { get; set; }
}

/// <summary>Every API response may carry an error instead of its fields.</summary>
internal class ApiResponse
{
    public string? Type { get; set; }

    public ApiError? Error { get; set; }
}

internal sealed class StreamConfig
{
    public required string Name { get; set; }

    public string? Description { get; set; }

    public string[]? Subjects { get; set; }

    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public RetentionPolicy Retention { get; set; }

    public long MaxConsumers { get; set; }

    public long MaxMsgs { get; set; }

    public long MaxBytes { get; set; }

    [JsonConverter(typeof(NanosecondsConverter))]
    public TimeSpan MaxAge { get; set; }

    public long MaxMsgsPerSubject { get; set; }

    public int MaxMsgSize { get; set; }

    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public StorageType Storage { get; set; }

    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public DiscardPolicy Discard { get; set; }

    public int NumReplicas { get; set; }

    [JsonConverter(typeof(NanosecondsConverter))]
    public TimeSpan DuplicateWindow { get; set; }

    public bool DenyDelete { get; set; }

    public bool AllowRollupHdrs { get; set; }
}

internal sealed class StreamState
{
    public ulong Messages { get; set; }

    public ulong Bytes { get; set; }

    public ulong FirstSeq { get; set; }

    public ulong LastSeq { get; set; }

    public int ConsumerCount { get; set; }
}

internal sealed class StreamInfo : ApiResponse
{
    public StreamConfig? Config { get; set; }

    public StreamState? State { get; set; }

    public DateTimeOffset Created { get; set; }
}

internal sealed class ConsumerConfig
{
    public string? DurableName { get; set; }

    public string? Name { get; set; }

    public string? Description { get; set; }

    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public DeliverPolicy DeliverPolicy { get; set; }

    public ulong OptStartSeq { get; set; }

    /// <summary>Start time of a <c>by_start_time</c> consumer (RFC 3339).</summary>
    public DateTimeOffset? OptStartTime { get; set; }

    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public AckPolicy AckPolicy { get; set; }

    [JsonConverter(typeof(NanosecondsConverter))]
    public TimeSpan AckWait { get; set; }

    public long MaxDeliver { get; set; }

    [JsonConverter(typeof(NanosecondsArrayConverter))]
    public TimeSpan[]? Backoff { get; set; }

    public string? FilterSubject { get; set; }

    /// <summary>Several filter subjects (nats-server 2.10 and later).</summary>
    public string[]? FilterSubjects { get; set; }

    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public ReplayPolicy ReplayPolicy { get; set; }

    public long MaxWaiting { get; set; }

    public long MaxAckPending { get; set; }

    [JsonConverter(typeof(NanosecondsConverter))]
    public TimeSpan InactiveThreshold { get; set; }

    public int MaxBatch { get; set; }

    [JsonConverter(typeof(NanosecondsConverter))]
    public TimeSpan MaxExpires { get; set; }

    public long MaxBytes { get; set; }

    public int NumReplicas { get; set; }

    public bool MemStorage { get; set; }
}

internal sealed class SequenceInfo
{
    public ulong ConsumerSeq { get; set; }

    public ulong StreamSeq { get; set; }
}

internal sealed class ConsumerInfo : ApiResponse
{
    public string? StreamName { get; set; }

    public string? Name { get; set; }

    public ConsumerConfig? Config { get; set; }

    public SequenceInfo? Delivered { get; set; }

    public SequenceInfo? AckFloor { get; set; }

    public long NumAckPending { get; set; }

    public long NumRedelivered { get; set; }

    public long NumWaiting { get; set; }

    public ulong NumPending { get; set; }

    /// <summary>In a cluster, the consumer's replica group (its leader); absent on a single server.</summary>
    public ClusterInfo? Cluster { get; set; }
}

/// <summary>A replicated stream's or consumer's group in a cluster.</summary>
internal sealed class ClusterInfo
{
    /// <summary>The cluster's name.</summary>
    public string? Name { get; set; }

    /// <summary>The server name of the group's current leader, which serves its pulls and acks.</summary>
    public string? Leader { get; set; }
}

internal sealed class CreateConsumerRequest
{
    public required string StreamName { get; set; }

    public required ConsumerConfig Config { get; set; }

    /// <summary><c>create</c>, <c>update</c>, or empty for create-or-update (servers before 2.10 ignore it).</summary>
    public string? Action { get; set; }
}

internal sealed class DeleteResponse : ApiResponse
{
    public bool Success { get; set; }
}

internal sealed class PubAck : ApiResponse
{
    public string? Stream { get; set; }

    public ulong Seq { get; set; }

    public bool Duplicate { get; set; }

    public string? Domain { get; set; }
}

internal sealed class PullRequest
{
    public int Batch { get; set; }

    [JsonConverter(typeof(NanosecondsConverter))]
    public TimeSpan Expires { get; set; }

    public long MaxBytes { get; set; }

    [JsonConverter(typeof(NanosecondsConverter))]
    public TimeSpan IdleHeartbeat { get; set; }

    public bool NoWait { get; set; }
}

internal sealed class NakDelay
{
    [JsonConverter(typeof(NanosecondsConverter))]
    public TimeSpan Delay { get; set; }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingDefault)]
[JsonSerializable(typeof(ApiResponse))]
[JsonSerializable(typeof(StreamConfig))]
[JsonSerializable(typeof(StreamInfo))]
[JsonSerializable(typeof(ConsumerInfo))]
[JsonSerializable(typeof(CreateConsumerRequest))]
[JsonSerializable(typeof(DeleteResponse))]
[JsonSerializable(typeof(PubAck))]
[JsonSerializable(typeof(PullRequest))]
[JsonSerializable(typeof(NakDelay))]
internal sealed partial class JetStreamJsonContext : JsonSerializerContext;
