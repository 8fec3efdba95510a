namespace Kawa.Dataflow;

/// <summary>The default payload-size measure for in-flight byte accounting.</summary>
internal static class PayloadSize
{
    /// <summary>
    /// <c>byte[]</c>, <see cref="ReadOnlyMemory{T}"/> / <see cref="Memory{T}"/> of bytes: their length; <see cref="string"/>:
    /// its length in UTF-16 code units; anything else: the <see cref="MessageAttributeKeys.PayloadSize"/> attribute, else 0.
    /// </summary>
    public static Func<Message<T>, long> Default<T>()
    {
        if (typeof(T) == typeof(byte[]))
        {
            return static m => m.Value is byte[] bytes ? bytes.Length : FromAttribute(m.Attributes);
        }

        if (typeof(T) == typeof(string))
        {
            return static m => m.Value is string text ? text.Length : FromAttribute(m.Attributes);
        }

        if (typeof(T) == typeof(ReadOnlyMemory<byte>))
        {
            return static m => ((ReadOnlyMemory<byte>)(object)m.Value!).Length;
        }

        if (typeof(T) == typeof(Memory<byte>))
        {
            return static m => ((Memory<byte>)(object)m.Value!).Length;
        }

        return static m => FromAttribute(m.Attributes);
    }

    private static long FromAttribute(MessageAttributes attributes)
        => attributes.Count != 0 && attributes.TryGet(MessageAttributeKeys.PayloadSize, out var size) ? size : 0;
}
