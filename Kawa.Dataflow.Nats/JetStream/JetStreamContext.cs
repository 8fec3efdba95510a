using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.Protocol;

namespace Kawa.Dataflow.Nats.JetStream;

/// <summary>Options of a JetStream publish: de-duplication and optimistic-concurrency headers.</summary>
internal sealed class JetStreamPublishOptions
{
    /// <summary><c>Nats-Msg-Id</c>: the stream drops a second message with the same id within its duplicate window.</summary>
    public string? MsgId { get; init; }

    /// <summary><c>Nats-Expected-Stream</c>.</summary>
    public string? ExpectedStream { get; init; }

    /// <summary><c>Nats-Expected-Last-Sequence</c>: the stream's last sequence must be this.</summary>
    public ulong? ExpectedLastSequence { get; init; }

    /// <summary><c>Nats-Expected-Last-Subject-Sequence</c>: the last sequence on this subject must be this.</summary>
    public ulong? ExpectedLastSubjectSequence { get; init; }

    /// <summary><c>Nats-Expected-Last-Msg-Id</c>.</summary>
    public string? ExpectedLastMsgId { get; init; }

    /// <summary>How long to wait for the PubAck; default the connection's request timeout.</summary>
    public TimeSpan? Timeout { get; init; }
}

/// <summary>
/// The JetStream API over a connection: streams, consumers, publish with PubAck, pull consumers.
/// </summary>
/// <remarks>API subjects are <c>$JS.API.…</c>, <c>$JS.&lt;domain&gt;.API.…</c> with a domain, or a custom prefix.
/// Every API error becomes a <see cref="JetStreamApiException"/> carrying <c>code</c>, <c>err_code</c> and the description.</remarks>
internal sealed class JetStreamContext
{
    public const int StreamNotFound = 10059;
    public const int ConsumerNotFound = 10014;

    private static readonly System.Buffers.SearchValues<char> InvalidNameChars = System.Buffers.SearchValues.Create(" \t\r\n.*>");

    private readonly NatsConnection _connection;

    public JetStreamContext(NatsConnection connection)
    {
        _connection = connection;
        var options = connection.Options;
        ApiPrefix = options.JetStreamApiPrefix?.TrimEnd('.')
            ?? (options.JetStreamDomain is { } domain ? $"$JS.{domain}.API" : "$JS.API");
    }

    public string ApiPrefix { get; }

    public NatsConnection Connection => _connection;

    public Task<StreamInfo> CreateStreamAsync(StreamConfig config, CancellationToken cancellationToken = default)
        => RequestAsync($"STREAM.CREATE.{Name(config.Name)}", config, JetStreamJsonContext.Default.StreamConfig, JetStreamJsonContext.Default.StreamInfo, cancellationToken);

    public Task<StreamInfo> UpdateStreamAsync(StreamConfig config, CancellationToken cancellationToken = default)
        => RequestAsync($"STREAM.UPDATE.{Name(config.Name)}", config, JetStreamJsonContext.Default.StreamConfig, JetStreamJsonContext.Default.StreamInfo, cancellationToken);

    public Task<StreamInfo> GetStreamAsync(string stream, CancellationToken cancellationToken = default)
        => RequestAsync($"STREAM.INFO.{Name(stream)}", JetStreamJsonContext.Default.StreamInfo, cancellationToken);

    public async Task<bool> DeleteStreamAsync(string stream, CancellationToken cancellationToken = default)
        => (await RequestAsync($"STREAM.DELETE.{Name(stream)}", JetStreamJsonContext.Default.DeleteResponse, cancellationToken).ConfigureAwait(false)).Success;

    /// <summary>Creates or updates a consumer (named by its durable name or name).</summary>
    /// <param name="stream">The stream the consumer reads.</param>
    /// <param name="config">The consumer's configuration.</param>
    /// <param name="action"><c>create</c> (fail if it exists differently), <c>update</c> (fail if missing), or null for either.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    public Task<ConsumerInfo> CreateConsumerAsync(string stream, ConsumerConfig config, string? action = null, CancellationToken cancellationToken = default)
    {
        var name = config.DurableName ?? config.Name ?? throw new ArgumentException("The consumer needs a DurableName or Name.", nameof(config));
        var request = new CreateConsumerRequest { StreamName = stream, Config = config, Action = action };
        var subject = config.DurableName is not null ? $"CONSUMER.DURABLE.CREATE.{Name(stream)}.{Name(name)}" : $"CONSUMER.CREATE.{Name(stream)}.{Name(name)}";
        return RequestAsync(subject, request, JetStreamJsonContext.Default.CreateConsumerRequest, JetStreamJsonContext.Default.ConsumerInfo, cancellationToken);
    }

    public Task<ConsumerInfo> UpdateConsumerAsync(string stream, ConsumerConfig config, CancellationToken cancellationToken = default)
        => CreateConsumerAsync(stream, config, "update", cancellationToken);

    public Task<ConsumerInfo> GetConsumerAsync(string stream, string consumer, CancellationToken cancellationToken = default)
        => RequestAsync($"CONSUMER.INFO.{Name(stream)}.{Name(consumer)}", JetStreamJsonContext.Default.ConsumerInfo, cancellationToken);

    public async Task<bool> DeleteConsumerAsync(string stream, string consumer, CancellationToken cancellationToken = default)
        => (await RequestAsync($"CONSUMER.DELETE.{Name(stream)}.{Name(consumer)}", JetStreamJsonContext.Default.DeleteResponse, cancellationToken).ConfigureAwait(false)).Success;

    /// <summary>Publishes to a stream and waits for its PubAck.</summary>
    /// <exception cref="JetStreamApiException">The stream refused it (e.g. 10071 wrong last sequence).</exception>
    /// <exception cref="NatsNoRespondersException">No stream captures <paramref name="subject"/>.</exception>
    public async Task<PubAck> PublishAsync(string subject, ReadOnlyMemory<byte> payload, NatsHeaders? headers = null, JetStreamPublishOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (options is not null)
        {
            headers ??= new NatsHeaders();
            SetIf(headers, "Nats-Msg-Id", options.MsgId);
            SetIf(headers, "Nats-Expected-Stream", options.ExpectedStream);
            SetIf(headers, "Nats-Expected-Last-Sequence", options.ExpectedLastSequence?.ToString(CultureInfo.InvariantCulture));
            SetIf(headers, "Nats-Expected-Last-Subject-Sequence", options.ExpectedLastSubjectSequence?.ToString(CultureInfo.InvariantCulture));
            SetIf(headers, "Nats-Expected-Last-Msg-Id", options.ExpectedLastMsgId);
        }

        NatsMsg reply;
        try
        {
            reply = await _connection.RequestAsync(subject, payload, headers, options?.Timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (NatsNoRespondersException ex)
        {
            throw new NatsNoRespondersException($"No JetStream stream captures subject '{subject}' (no responders).", ex);
        }

        var ack = Deserialize(reply.Data, JetStreamJsonContext.Default.PubAck, subject);
        return ack;
    }

    /// <summary>A pull consumer on an existing consumer; call <see cref="NatsPullConsumer.StartAsync"/>.</summary>
    public NatsPullConsumer CreatePullConsumer(string stream, string consumer, NatsPullConsumerOptions? options = null)
        => new(this, stream, consumer, options ?? new NatsPullConsumerOptions());

    internal string ApiSubject(string suffix) => ApiPrefix + "." + suffix;

    private Task<TResponse> RequestAsync<TResponse>(string suffix, JsonTypeInfo<TResponse> responseInfo, CancellationToken cancellationToken)
        where TResponse : ApiResponse
        => SendAsync(suffix, ReadOnlyMemory<byte>.Empty, responseInfo, cancellationToken);

    private Task<TResponse> RequestAsync<TRequest, TResponse>(string suffix, TRequest request, JsonTypeInfo<TRequest> requestInfo, JsonTypeInfo<TResponse> responseInfo, CancellationToken cancellationToken)
        where TResponse : ApiResponse
        => SendAsync(suffix, JsonSerializer.SerializeToUtf8Bytes(request, requestInfo), responseInfo, cancellationToken);

    private async Task<TResponse> SendAsync<TResponse>(string suffix, ReadOnlyMemory<byte> body, JsonTypeInfo<TResponse> responseInfo, CancellationToken cancellationToken)
        where TResponse : ApiResponse
    {
        var subject = ApiSubject(suffix);
        NatsMsg reply;
        try
        {
            reply = await _connection.RequestAsync(subject, body, null, null, cancellationToken).ConfigureAwait(false);
        }
        catch (NatsNoRespondersException ex)
        {
            throw new NatsNoRespondersException($"JetStream is not available at '{ApiPrefix}' (no responders to {subject}); is JetStream enabled and the domain/prefix right?", ex);
        }

        return Deserialize(reply.Data, responseInfo, subject);
    }

    private static TResponse Deserialize<TResponse>(byte[] data, JsonTypeInfo<TResponse> info, string subject)
        where TResponse : ApiResponse
    {
        TResponse? response;
        try
        {
            response = JsonSerializer.Deserialize(data, info);
        }
        catch (JsonException ex)
        {
            throw new NatsProtocolException($"Unreadable JetStream response to '{subject}': {ex.Message}", ex);
        }

        if (response is null)
        {
            throw new NatsProtocolException($"Empty JetStream response to '{subject}'.");
        }

        if (response.Error is { } error)
        {
            throw new JetStreamApiException(error.Code, error.ErrCode, error.Description);
        }

        return response;
    }

    private static void SetIf(NatsHeaders headers, string name, string? value)
    {
        if (value is not null)
        {
            headers.Set(name, value);
        }
    }

    private static string Name(string name)
    {
        if (string.IsNullOrEmpty(name) || name.AsSpan().IndexOfAny(InvalidNameChars) >= 0)
        {
            throw new ArgumentException($"JetStream name '{name}' must be non-empty without spaces, dots or wildcards.", nameof(name));
        }

        return name;
    }
}
