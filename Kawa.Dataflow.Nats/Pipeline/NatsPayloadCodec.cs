using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Kawa.Dataflow.Nats.Pipeline;

/// <summary>How NATS payload bytes become values and back: raw bytes, UTF-8 strings, System.Text.Json, or your own.</summary>
/// <typeparam name="T">The value type.</typeparam>
/// <remarks>
/// <para>Build one with <see cref="NatsPayloadCodec"/>. <see cref="Decode"/> throws when a payload is not a valid
/// <typeparamref name="T"/>; <see cref="NatsJetStreamSource{T}"/> then applies its
/// <see cref="NatsJetStreamSourceOptions.DecodeFailure"/> rule. <see cref="Encode"/> fits
/// <c>NatsJetStreamDestinationOptions&lt;T&gt;.Serializer</c>, so one codec serves both ends.</para>
/// <para>Both functions must be thread-safe: a pipeline may call them from several stages at once.</para>
/// </remarks>
public sealed class NatsPayloadCodec<T>
{
    private readonly Func<ReadOnlyMemory<byte>, T> _decode;
    private readonly Func<T, ReadOnlyMemory<byte>> _encode;

    internal NatsPayloadCodec(string name, Func<ReadOnlyMemory<byte>, T> decode, Func<T, ReadOnlyMemory<byte>> encode)
    {
        Name = name;
        _decode = decode;
        _encode = encode;
    }

    /// <summary>A short name for logs and errors (<c>bytes</c>, <c>utf8</c>, <c>json:Order</c>, ...).</summary>
    public string Name { get; }

    /// <summary>Turns a payload into a value.</summary>
    /// <param name="payload">The message data.</param>
    /// <exception cref="FormatException">The payload is not a valid value (the inner exception says why).</exception>
    public T Decode(ReadOnlyMemory<byte> payload)
    {
        try
        {
            return _decode(payload);
        }
        catch (Exception ex) when (ex is not FormatException)
        {
            throw new FormatException($"The payload ({payload.Length} bytes) is not valid for codec '{Name}': {ex.Message}", ex);
        }
    }

    /// <summary>Turns a value into a payload.</summary>
    /// <param name="value">The value.</param>
    public ReadOnlyMemory<byte> Encode(T value) => _encode(value);

    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>The built-in <see cref="NatsPayloadCodec{T}"/>s.</summary>
public static class NatsPayloadCodec
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The payload as it is (a copy the message owns).</summary>
    public static NatsPayloadCodec<byte[]> Bytes { get; } = new("bytes", static p => p.ToArray(), static v => v);

    /// <summary>The payload as strict UTF-8 text: invalid UTF-8 fails to decode rather than turning into U+FFFD.</summary>
    public static NatsPayloadCodec<string> Utf8String { get; } = new("utf8", static p => StrictUtf8.GetString(p.Span), static v => StrictUtf8.GetBytes(v));

    /// <summary>JSON through System.Text.Json with <paramref name="typeInfo"/> (from a source-generated context, or
    /// <c>JsonSerializerOptions.GetTypeInfo</c>), so no reflection is needed at run time.</summary>
    /// <typeparam name="T">The value type.</typeparam>
    /// <param name="typeInfo">The contract for <typeparamref name="T"/>.</param>
    /// <remarks>A payload of <c>null</c> decodes to <see langword="default"/>; an empty payload is invalid.</remarks>
    public static NatsPayloadCodec<T> Json<T>(JsonTypeInfo<T> typeInfo)
    {
        ArgumentNullException.ThrowIfNull(typeInfo);
        return new NatsPayloadCodec<T>(
            "json:" + typeof(T).Name,
            p => JsonSerializer.Deserialize(p.Span, typeInfo)!,
            v => JsonSerializer.SerializeToUtf8Bytes(v, typeInfo));
    }

    /// <summary>A codec from your own functions.</summary>
    /// <typeparam name="T">The value type.</typeparam>
    /// <param name="name">A short name for logs and errors.</param>
    /// <param name="decode">Payload to value; throws on invalid input. Must be thread-safe.</param>
    /// <param name="encode">Value to payload. Must be thread-safe.</param>
    public static NatsPayloadCodec<T> Create<T>(string name, Func<ReadOnlyMemory<byte>, T> decode, Func<T, ReadOnlyMemory<byte>> encode)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(decode);
        ArgumentNullException.ThrowIfNull(encode);
        return new NatsPayloadCodec<T>(name, decode, encode);
    }
}
