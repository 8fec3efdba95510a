using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace Kawa.Dataflow;

/// <summary>
/// An immutable set of named, typed values describing where a message came from (subject, sequence,
/// delivery count, headers, timestamps).
/// </summary>
/// <remarks>
/// Small by design: a flat array searched linearly, which beats a dictionary for the handful of entries a
/// source sets. Build one with <see cref="CreateBuilder(int)"/> or derive with <see cref="With{TValue}(AttributeKey{TValue}, TValue)"/>;
/// a source that sets many values on every message can hand out a <see cref="MessageAttributeProvider"/> instead
/// (<see cref="FromProvider"/>), read on demand without boxing.
/// Well-known keys are in <see cref="MessageAttributeKeys"/>; any stage may add its own.
/// </remarks>
public sealed class MessageAttributes : IReadOnlyCollection<KeyValuePair<string, object?>>
{
    // Exactly one of the two is set: stored entries, or a source's provider that computes them on demand.
    private readonly KeyValuePair<string, object?>[]? _entries;
    private readonly MessageAttributeProvider? _provider;

    private MessageAttributes(KeyValuePair<string, object?>[] entries) => _entries = entries;

    private MessageAttributes(MessageAttributeProvider provider) => _provider = provider;

    /// <summary>No attributes.</summary>
    public static MessageAttributes Empty { get; } = new([]);

    /// <inheritdoc/>
    public int Count => _entries?.Length ?? _provider!.Count;

    /// <summary>
    /// Attributes read from <paramref name="provider"/> when asked, instead of stored: for sources that describe every
    /// message with many values (see <see cref="MessageAttributeProvider"/>).
    /// </summary>
    /// <param name="provider">The provider; its set must not change from now on.</param>
    public static MessageAttributes FromProvider(MessageAttributeProvider provider)
    {
        ArgumentNullException.ThrowIfNull(provider);
        return new MessageAttributes(provider);
    }

    /// <summary>Reads an attribute.</summary>
    /// <returns><see langword="true"/> if present with a value of type <typeparamref name="TValue"/>.</returns>
    public bool TryGet<TValue>(AttributeKey<TValue> key, [MaybeNullWhen(false)] out TValue value)
    {
        if (_entries is null)
        {
            return _provider!.TryGet(key, out value);
        }

        foreach (var entry in _entries)
        {
            if (string.Equals(entry.Key, key.Name, StringComparison.Ordinal) && entry.Value is TValue typed)
            {
                value = typed;
                return true;
            }
        }

        value = default;
        return false;
    }

    /// <summary>Reads an attribute, or <paramref name="fallback"/> when absent.</summary>
    public TValue GetOrDefault<TValue>(AttributeKey<TValue> key, TValue fallback = default!)
        => TryGet(key, out var value) ? value : fallback;

    /// <summary>Reads an attribute by name, whatever its type (for generic tools such as the daemon's field mapping).</summary>
    public bool TryGetValue(string name, out object? value)
    {
        foreach (var entry in Entries)
        {
            if (string.Equals(entry.Key, name, StringComparison.Ordinal))
            {
                value = entry.Value;
                return true;
            }
        }

        value = null;
        return false;
    }

    /// <summary>A copy with <paramref name="key"/> set to <paramref name="value"/> (replacing an earlier value).</summary>
    public MessageAttributes With<TValue>(AttributeKey<TValue> key, TValue value)
    {
        var entries = Entries;
        var index = IndexOf(entries, entries.Length, key.Name);
        KeyValuePair<string, object?>[] copy;
        if (index >= 0)
        {
            copy = (KeyValuePair<string, object?>[])entries.Clone();
            copy[index] = new(key.Name, Box(value));
        }
        else
        {
            copy = new KeyValuePair<string, object?>[entries.Length + 1];
            entries.CopyTo(copy, 0);
            copy[^1] = new(key.Name, Box(value));
        }

        return new MessageAttributes(copy);
    }

    /// <summary>The stored entries, or a provider's read out (boxing each value: for the rare by-name and derive paths).</summary>
    private KeyValuePair<string, object?>[] Entries
    {
        get
        {
            if (_entries is not null)
            {
                return _entries;
            }

            var entries = new KeyValuePair<string, object?>[_provider!.Count];
            for (var i = 0; i < entries.Length; i++)
            {
                entries[i] = _provider.GetAt(i);
            }

            return entries;
        }
    }

    private static int IndexOf(KeyValuePair<string, object?>[] entries, int count, string name)
    {
        for (var i = 0; i < count; i++)
        {
            if (string.Equals(entries[i].Key, name, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }

    private static readonly object s_true = true;
    private static readonly object s_false = false;

    /// <summary>Boxes a value, sharing the two boolean boxes (a flag is set on every message by some sources).</summary>
    internal static object? Box<TValue>(TValue value)
        => typeof(TValue) == typeof(bool) ? ((bool)(object)value! ? s_true : s_false) : value;

    /// <summary>Starts a builder sized for <paramref name="capacity"/> entries.</summary>
    public static Builder CreateBuilder(int capacity = 8) => new(capacity);

    /// <summary>Enumerates the entries in the order they were set.</summary>
    public IEnumerator<KeyValuePair<string, object?>> GetEnumerator() => ((IEnumerable<KeyValuePair<string, object?>>)Entries).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Collects attributes, then freezes them into a <see cref="MessageAttributes"/>.</summary>
    /// <remarks>Sized right (<see cref="CreateBuilder(int)"/>), it allocates one array, which <see cref="Build"/>
    /// hands over without copying; a builder used again after <see cref="Build"/> copies before it changes anything.</remarks>
    public sealed class Builder
    {
        private KeyValuePair<string, object?>[] _entries;
        private int _count;
        private bool _shared;

        internal Builder(int capacity) => _entries = capacity <= 0 ? [] : new KeyValuePair<string, object?>[capacity];

        /// <summary>Sets <paramref name="key"/> to <paramref name="value"/>, replacing an earlier value.</summary>
        public Builder Set<TValue>(AttributeKey<TValue> key, TValue value)
        {
            if (_shared)
            {
                _entries = _entries[.._count];
                _shared = false;
            }

            var entry = new KeyValuePair<string, object?>(key.Name, Box(value));
            var index = IndexOf(_entries, _count, key.Name);
            if (index >= 0)
            {
                _entries[index] = entry;
                return this;
            }

            if (_count == _entries.Length)
            {
                Array.Resize(ref _entries, Math.Max(4, _count * 2));
            }

            _entries[_count++] = entry;
            return this;
        }

        /// <summary>The frozen set.</summary>
        public MessageAttributes Build()
        {
            if (_count == 0)
            {
                return Empty;
            }

            if (_count == _entries.Length)
            {
                _shared = true;
                return new MessageAttributes(_entries);
            }

            return new MessageAttributes(_entries[.._count]);
        }
    }
}
