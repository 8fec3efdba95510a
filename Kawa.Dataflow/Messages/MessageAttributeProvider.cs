using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Kawa.Dataflow;

/// <summary>
/// A message's attributes computed on demand from a source's own fields: an extension point for sources that describe
/// every message with many values, so they need not box and store each one (wrap it with
/// <see cref="MessageAttributes.FromProvider"/>).
/// </summary>
/// <remarks>
/// <para>Rules: the set is fixed once the provider is handed out, because stages read it from any thread without
/// locks. Names are unique. <see cref="TryGet{TValue}"/> agrees with <see cref="GetAt"/>: the same names and values, and
/// a key whose value type does not match the stored value is not found (as for stored attributes). A
/// <see langword="null"/> value is not found by <see cref="TryGet{TValue}"/>.</para>
/// <para>The default <see cref="TryGet{TValue}"/> searches <see cref="GetAt"/>; override it to answer the keys stages
/// read for every message without boxing (<see cref="Match{TStored, TValue}"/> does the type rule).</para>
/// </remarks>
public abstract class MessageAttributeProvider
{
    /// <summary>How many attributes there are.</summary>
    public abstract int Count { get; }

    /// <summary>The attribute at <paramref name="index"/> (0 to <see cref="Count"/> - 1), in a stable order.</summary>
    /// <param name="index">The position.</param>
    public abstract KeyValuePair<string, object?> GetAt(int index);

    /// <summary>Reads the attribute named by <paramref name="key"/> if its value is a <typeparamref name="TValue"/>.</summary>
    /// <param name="key">The key.</param>
    /// <param name="value">The value, when found.</param>
    /// <typeparam name="TValue">The key's value type.</typeparam>
    public virtual bool TryGet<TValue>(AttributeKey<TValue> key, [MaybeNullWhen(false)] out TValue value)
    {
        for (var i = 0; i < Count; i++)
        {
            var entry = GetAt(i);
            if (string.Equals(entry.Key, key.Name, StringComparison.Ordinal) && entry.Value is TValue typed)
            {
                value = typed;
                return true;
            }
        }

        value = default;
        return false;
    }

    /// <summary>
    /// The type rule of <see cref="TryGet{TValue}"/> for a value stored as <typeparamref name="TStored"/>: found when it
    /// is not <see langword="null"/> and is a <typeparamref name="TValue"/>, without boxing when the types are equal.
    /// </summary>
    /// <param name="stored">The stored value.</param>
    /// <param name="value">The value as <typeparamref name="TValue"/>, when it matches.</param>
    /// <typeparam name="TStored">The stored type.</typeparam>
    /// <typeparam name="TValue">The asked-for type.</typeparam>
    protected static bool Match<TStored, TValue>(TStored stored, [MaybeNullWhen(false)] out TValue value)
    {
        if (stored is null)
        {
            value = default;
            return false;
        }

        if (typeof(TValue) == typeof(TStored))
        {
            value = Unsafe.As<TStored, TValue>(ref stored);
            return true;
        }

        if (MessageAttributes.Box(stored) is TValue typed)
        {
            value = typed;
            return true;
        }

        value = default;
        return false;
    }
}
