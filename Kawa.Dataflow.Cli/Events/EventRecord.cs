using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Kawa.Dataflow.Cli.Events;

/// <summary>
/// One event in a daemon pipeline: the raw payload as received plus an ordered set of named, typed fields that
/// the parse handlers fill and later handlers filter, rename and enrich.
/// </summary>
/// <remarks>
/// <para>
/// Fields keep insertion order (the order a parser found them, which is the order <c>_extra</c> JSON and
/// <c>stdout</c> print) and names are case-sensitive (ordinal). Storage is two parallel arrays searched linearly:
/// for the 5–20 fields of a log line that beats a dictionary in both time and memory; a name index would only pay
/// off for wide records.
/// </para>
/// <para>
/// Ownership: a record is mutable and not thread-safe. Within a pipeline exactly one stage owns it at a time (the
/// handler that received it, then whatever it passed it to), so handlers change it in place instead of copying.
/// A handler that emits several outputs must <see cref="Clone"/> for all but one. <see cref="Raw"/> never changes:
/// it is what a dead-letter record and the default Parquet schema keep.
/// </para>
/// </remarks>
internal sealed class EventRecord
{
    private string[] _names;
    private bool _namesShared; // _names belongs to other records too (see Adopt): copy before changing a name
    private FieldValue[] _values;
    private int _count;

    /// <summary>An empty record over <paramref name="raw"/>.</summary>
    /// <param name="raw">The payload as received (not copied: the caller hands it over).</param>
    /// <param name="capacity">Expected field count.</param>
    public EventRecord(ReadOnlyMemory<byte> raw = default, int capacity = 8)
    {
        Raw = raw;
        _names = capacity == 0 ? [] : new string[capacity];
        _values = capacity == 0 ? [] : new FieldValue[capacity];
    }

    /// <summary>The payload exactly as the source delivered it.</summary>
    public ReadOnlyMemory<byte> Raw { get; }

    /// <summary>How many fields the record has.</summary>
    public int Count => _count;

    /// <summary>The field names in order.</summary>
    public IEnumerable<string> Names
    {
        get
        {
            for (var i = 0; i < _count; i++)
            {
                yield return _names[i];
            }
        }
    }

    /// <summary>The raw payload decoded as UTF-8 (invalid bytes become U+FFFD).</summary>
    public string RawText => Encoding.UTF8.GetString(Raw.Span);

    /// <summary>Gets a field, or <see cref="FieldValue.Null"/> when absent (use <see cref="TryGet"/> to tell the two apart); setting adds or replaces.</summary>
    public FieldValue this[string name]
    {
        get => TryGet(name, out var value) ? value : FieldValue.Null;
        set => Set(name, value);
    }

    /// <summary>The field at <paramref name="index"/> (insertion order).</summary>
    public KeyValuePair<string, FieldValue> GetAt(int index)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, (uint)_count, nameof(index));
        return new(_names[index], _values[index]);
    }

    /// <summary>Reads a field.</summary>
    /// <returns><see langword="true"/> if the record has a field named <paramref name="name"/> (its value may be null).</returns>
    public bool TryGet(string name, out FieldValue value)
    {
        var i = IndexOf(name);
        value = i >= 0 ? _values[i] : default;
        return i >= 0;
    }

    /// <summary>Whether the record has a field named <paramref name="name"/>.</summary>
    public bool Contains(string name) => IndexOf(name) >= 0;

    /// <summary>Makes room for <paramref name="capacity"/> fields, so adding that many does not grow the storage again.</summary>
    public void EnsureCapacity(int capacity)
    {
        if (capacity > _names.Length)
        {
            Array.Resize(ref _names, capacity);
            _namesShared = false;
            Array.Resize(ref _values, capacity);
        }
    }

    /// <summary>Sets a field: replaces the value in place if present (keeping its position), else appends it.</summary>
    public EventRecord Set(string name, FieldValue value)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var i = IndexOf(name);
        if (i >= 0)
        {
            _values[i] = value;
            return this;
        }

        if (_count == _names.Length)
        {
            var size = Math.Max(4, _count * 2);
            Array.Resize(ref _names, size);
            _namesShared = false;
            Array.Resize(ref _values, size);
        }

        OwnNames();
        _names[_count] = name;
        _values[_count] = value;
        _count++;
        return this;
    }

    /// <summary>Sets a string field (<see langword="null"/> stores a null).</summary>
    public EventRecord Set(string name, string? value) => Set(name, FieldValue.From(value));

    /// <summary>Sets an integer field.</summary>
    public EventRecord Set(string name, long value) => Set(name, FieldValue.From(value));

    /// <summary>Sets a floating-point field.</summary>
    public EventRecord Set(string name, double value) => Set(name, FieldValue.From(value));

    /// <summary>Sets a boolean field.</summary>
    public EventRecord Set(string name, bool value) => Set(name, FieldValue.From(value));

    /// <summary>Sets a timestamp field.</summary>
    public EventRecord Set(string name, DateTimeOffset value) => Set(name, FieldValue.From(value));

    /// <summary>Removes a field, keeping the others' order.</summary>
    /// <returns><see langword="true"/> if it was present.</returns>
    public bool Remove(string name)
    {
        var i = IndexOf(name);
        if (i < 0)
        {
            return false;
        }

        OwnNames();
        _count--;
        Array.Copy(_names, i + 1, _names, i, _count - i);
        Array.Copy(_values, i + 1, _values, i, _count - i);
        _names[_count] = null!;
        _values[_count] = default;
        return true;
    }

    /// <summary>
    /// Renames a field in place (same position). If <paramref name="to"/> already exists it is replaced (removed) first.
    /// </summary>
    /// <returns><see langword="true"/> if <paramref name="from"/> was present.</returns>
    public bool Rename(string from, string to)
    {
        ArgumentException.ThrowIfNullOrEmpty(to);
        if (string.Equals(from, to, StringComparison.Ordinal))
        {
            return Contains(from);
        }

        if (IndexOf(from) < 0)
        {
            return false;
        }

        Remove(to);
        OwnNames();
        _names[IndexOf(from)] = to;
        return true;
    }

    /// <summary>A copy with the same raw payload (shared, it is immutable) and its own fields.</summary>
    public EventRecord Clone()
    {
        var copy = new EventRecord(Raw, Math.Max(_count, 1));
        Array.Copy(_names, copy._names, _count);
        Array.Copy(_values, copy._values, _count);
        copy._count = _count;
        return copy;
    }

    /// <summary>The fields as name/value pairs, in order.</summary>
    public IEnumerable<KeyValuePair<string, FieldValue>> Fields
    {
        get
        {
            for (var i = 0; i < _count; i++)
            {
                yield return new(_names[i], _values[i]);
            }
        }
    }

    /// <summary>Gets a string field's value.</summary>
    public bool TryGetString(string name, [NotNullWhen(true)] out string? value)
    {
        if (TryGet(name, out var field) && field.Kind == FieldKind.String)
        {
            value = field.AsString();
            return true;
        }

        value = null;
        return false;
    }

    /// <summary>
    /// Fills an empty record with fields whose names are <paramref name="names"/> (distinct, in order) and whose values
    /// are <paramref name="values"/> (same length; the record takes the array). The names array is shared, not copied:
    /// parsers pass the same array for every event of one shape, and the record copies it before changing a name.
    /// </summary>
    internal void Adopt(string[] names, FieldValue[] values)
    {
        if (_count != 0 || values.Length != names.Length)
        {
            throw new InvalidOperationException("Only an empty record can adopt a shape, with one value per name.");
        }

        _names = names;
        _namesShared = true;
        _values = values;
        _count = names.Length;
    }

    /// <summary>
    /// The names array this record shares with others of its shape (see <see cref="Adopt"/>), or <see langword="null"/>
    /// once it has names of its own. While shared, the array is exactly this record's names and never changes, so a
    /// result computed from the names alone can be reused for every record holding the same array.
    /// </summary>
    internal string[]? SharedNames => _namesShared ? _names : null;

    private void OwnNames()
    {
        if (_namesShared)
        {
            _names = (string[])_names.Clone();
            _namesShared = false;
        }
    }

    /// <summary>The position of field <paramref name="name"/> (see <see cref="GetAt"/>), or -1.</summary>
    public int IndexOf(string name)
    {
        var names = _names;
        for (var i = 0; i < _count; i++)
        {
            if (string.Equals(names[i], name, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }
}
