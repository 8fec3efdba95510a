using System.Text;

namespace Kawa.Dataflow.Nats.Pipeline;

/// <summary>The payload encoding both NATS destinations use when their options name no serializer.</summary>
internal static class PayloadSerializer
{
    /// <summary><c>byte[]</c> and <c>ReadOnlyMemory&lt;byte&gt;</c> as they are; anything else as a UTF-8 string.</summary>
    public static Func<T, ReadOnlyMemory<byte>> Default<T>()
    {
        if (typeof(T) == typeof(byte[]))
        {
            return static v => (byte[])(object)v!;
        }

        if (typeof(T) == typeof(ReadOnlyMemory<byte>))
        {
            return static v => (ReadOnlyMemory<byte>)(object)v!;
        }

        return static v => Encoding.UTF8.GetBytes((string)(object)v!);
    }
}
