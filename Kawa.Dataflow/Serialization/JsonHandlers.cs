using System.Diagnostics.CodeAnalysis;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Kawa.Dataflow;

/// <summary>
/// Handlers that turn JSON payloads into typed values and back, with System.Text.Json. Prefer the
/// <see cref="JsonTypeInfo{T}"/> overloads (source-generated, trimming- and AOT-safe).
/// </summary>
/// <remarks>
/// A payload that does not parse (or is JSON <c>null</c>) throws <see cref="PayloadFormatException"/> with the raw bytes
/// and the position the parser reported, so it goes through the stage's error policy (dead-letter keeps the bytes).
/// The message's key, topic and attributes are kept.
/// </remarks>
public static class JsonHandlers
{
    /// <summary>Parses UTF-8 JSON bytes into <typeparamref name="T"/>.</summary>
    /// <typeparam name="T">The target type.</typeparam>
    /// <param name="typeInfo">The (source-generated) type metadata.</param>
    public static IHandler<byte[], T> Deserialize<T>(JsonTypeInfo<T> typeInfo)
    {
        ArgumentNullException.ThrowIfNull(typeInfo);
        return Handler.Map<byte[], T>(m => m.With(Parse(m.Value, typeInfo)));
    }

    /// <summary>Parses UTF-8 JSON memory into <typeparamref name="T"/>.</summary>
    /// <typeparam name="T">The target type.</typeparam>
    /// <param name="typeInfo">The (source-generated) type metadata.</param>
    public static IHandler<ReadOnlyMemory<byte>, T> DeserializeMemory<T>(JsonTypeInfo<T> typeInfo)
    {
        ArgumentNullException.ThrowIfNull(typeInfo);
        return Handler.Map<ReadOnlyMemory<byte>, T>(m => m.With(Parse(m.Value, typeInfo)));
    }

    /// <summary>Parses JSON text into <typeparamref name="T"/>.</summary>
    /// <typeparam name="T">The target type.</typeparam>
    /// <param name="typeInfo">The (source-generated) type metadata.</param>
    public static IHandler<string, T> DeserializeString<T>(JsonTypeInfo<T> typeInfo)
    {
        ArgumentNullException.ThrowIfNull(typeInfo);
        return Handler.Map<string, T>(m => m.With(Parse(Encoding.UTF8.GetBytes(m.Value ?? string.Empty), typeInfo)));
    }

    /// <summary>Parses UTF-8 JSON bytes into <typeparamref name="T"/> with reflection-based serialization.</summary>
    /// <typeparam name="T">The target type.</typeparam>
    /// <param name="options">The serializer options; <see langword="null"/> for the web defaults.</param>
    [RequiresUnreferencedCode("Reflection-based JSON; use the JsonTypeInfo<T> overload for trimming.")]
    [RequiresDynamicCode("Reflection-based JSON; use the JsonTypeInfo<T> overload for native AOT.")]
    public static IHandler<byte[], T> Deserialize<T>(JsonSerializerOptions? options = null)
        => Deserialize((JsonTypeInfo<T>)(options ?? JsonSerializerOptions.Web).GetTypeInfo(typeof(T)));

    /// <summary>Writes <typeparamref name="T"/> as UTF-8 JSON bytes.</summary>
    /// <typeparam name="T">The source type.</typeparam>
    /// <param name="typeInfo">The (source-generated) type metadata.</param>
    public static IHandler<T, byte[]> Serialize<T>(JsonTypeInfo<T> typeInfo)
    {
        ArgumentNullException.ThrowIfNull(typeInfo);
        return Handler.Map<T, byte[]>(m => m.With(JsonSerializer.SerializeToUtf8Bytes(m.Value, typeInfo)));
    }

    /// <summary>Writes <typeparamref name="T"/> as JSON text.</summary>
    /// <typeparam name="T">The source type.</typeparam>
    /// <param name="typeInfo">The (source-generated) type metadata.</param>
    public static IHandler<T, string> SerializeToString<T>(JsonTypeInfo<T> typeInfo)
    {
        ArgumentNullException.ThrowIfNull(typeInfo);
        return Handler.Map<T, string>(m => m.With(JsonSerializer.Serialize(m.Value, typeInfo)));
    }

    /// <summary>Writes <typeparamref name="T"/> as UTF-8 JSON bytes with reflection-based serialization.</summary>
    /// <typeparam name="T">The source type.</typeparam>
    /// <param name="options">The serializer options; <see langword="null"/> for the web defaults.</param>
    [RequiresUnreferencedCode("Reflection-based JSON; use the JsonTypeInfo<T> overload for trimming.")]
    [RequiresDynamicCode("Reflection-based JSON; use the JsonTypeInfo<T> overload for native AOT.")]
    public static IHandler<T, byte[]> Serialize<T>(JsonSerializerOptions? options = null)
        => Serialize((JsonTypeInfo<T>)(options ?? JsonSerializerOptions.Web).GetTypeInfo(typeof(T)));

    private static T Parse<T>(ReadOnlyMemory<byte> payload, JsonTypeInfo<T> typeInfo)
    {
        T? value;
        try
        {
            value = JsonSerializer.Deserialize(payload.Span, typeInfo);
        }
        catch (JsonException ex)
        {
            throw new PayloadFormatException(
                $"The payload is not valid JSON for {typeof(T).Name}: {ex.Message}",
                payload,
                typeof(T),
                ex.LineNumber,
                ex.BytePositionInLine,
                ex.Path,
                ex);
        }
        catch (Exception ex) when (ex is NotSupportedException or InvalidOperationException or ArgumentException)
        {
            throw new PayloadFormatException($"The payload could not be read as {typeof(T).Name}: {ex.Message}", payload, typeof(T), null, null, null, ex);
        }

        if (value is null)
        {
            throw new PayloadFormatException($"The payload is JSON null; a {typeof(T).Name} was expected.", payload, typeof(T), 0, 0, "$", null);
        }

        return value;
    }
}
