using System.Runtime.CompilerServices;
using Kawa.Dataflow.Parquet.Schema;

namespace Kawa.Dataflow.Parquet.Writing;

// Dremel shredding with generic, typed node writers: each node knows its .NET type, so values flow from
// compiled property getters into the column buffers without boxing or per-row reflection.
// Write(value, rep, def): rep is the repetition level of the entry being started, def the definition level
// reached by the parent. WriteNull(rep, def) emits one entry at definition level def in every leaf below.

internal abstract class NodeWriter
{
    protected NodeWriter(string path) => Path = path;

    public string Path { get; }

    public abstract void WriteNull(int rep, int def);

    protected ParquetWriteException NullInRequired() =>
        new($"Column '{Path}' is not nullable, but the value is null.");
}

internal abstract class ValueWriter<T>(string path) : NodeWriter(path)
{
    public abstract void Write(T value, int rep, int def);
}

/// <summary>Appends one non-null .NET value to a leaf column's physical buffer.</summary>
internal abstract class LeafAppender<T>
{
    public abstract ColumnWriter Column { get; }

    public abstract void Append(T value);
}

internal sealed class RequiredLeaf<T>(string path, LeafAppender<T> appender) : ValueWriter<T>(path)
{
    private readonly ColumnWriter _column = appender.Column;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public override void Write(T value, int rep, int def)
    {
        if (value is null)
        {
            throw NullInRequired();
        }

        appender.Append(value);
        _column.Level(rep, def);
    }

    public override void WriteNull(int rep, int def) => _column.Level(rep, def);
}

internal sealed class OptionalLeaf<T>(string path, LeafAppender<T> appender) : ValueWriter<T>(path)
{
    private readonly ColumnWriter _column = appender.Column;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public override void Write(T value, int rep, int def)
    {
        if (value is null)
        {
            _column.Level(rep, def);
            return;
        }

        appender.Append(value);
        _column.Level(rep, def + 1);
    }

    public override void WriteNull(int rep, int def) => _column.Level(rep, def);
}

internal sealed class OptionalStructLeaf<T>(string path, LeafAppender<T> appender) : ValueWriter<T?>(path)
    where T : struct
{
    private readonly ColumnWriter _column = appender.Column;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public override void Write(T? value, int rep, int def)
    {
        if (!value.HasValue)
        {
            _column.Level(rep, def);
            return;
        }

        appender.Append(value.GetValueOrDefault());
        _column.Level(rep, def + 1);
    }

    public override void WriteNull(int rep, int def) => _column.Level(rep, def);
}

/// <summary>One property of a group: a compiled getter feeding the property's writer.</summary>
internal abstract class MemberWriter<TOwner>
{
    public abstract NodeWriter Node { get; }

    public abstract void Write(TOwner owner, int rep, int def);
}

internal sealed class MemberWriter<TOwner, TValue>(Func<TOwner, TValue> getter, ValueWriter<TValue> writer) : MemberWriter<TOwner>
{
    public override NodeWriter Node => writer;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public override void Write(TOwner owner, int rep, int def) => writer.Write(getter(owner), rep, def);
}

internal sealed class GroupWriter<T>(string path, bool nullable, MemberWriter<T>[] members) : ValueWriter<T>(path)
{
    public override void Write(T value, int rep, int def)
    {
        if (value is null)
        {
            if (!nullable)
            {
                throw NullInRequired();
            }

            WriteNull(rep, def);
            return;
        }

        int d = nullable ? def + 1 : def;
        foreach (var m in members)
        {
            m.Write(value, rep, d);
        }
    }

    public override void WriteNull(int rep, int def)
    {
        foreach (var m in members)
        {
            m.Node.WriteNull(rep, def);
        }
    }
}

/// <summary>LIST: <c>&lt;name&gt; (LIST) { repeated group list { &lt;element&gt; } }</c>.</summary>
internal sealed class ListWriter<TList, TElement>(string path, bool nullable, int repLevel, ValueWriter<TElement> element) : ValueWriter<TList>(path)
    where TList : IEnumerable<TElement>?
{
    public override void Write(TList value, int rep, int def)
    {
        if (value is null)
        {
            if (!nullable)
            {
                throw NullInRequired();
            }

            element.WriteNull(rep, def);
            return;
        }

        int d = nullable ? def + 1 : def;
        if (value is IReadOnlyList<TElement> list)
        {
            int n = list.Count;
            if (n == 0)
            {
                element.WriteNull(rep, d);
                return;
            }

            for (int i = 0; i < n; i++)
            {
                element.Write(list[i], i == 0 ? rep : repLevel, d + 1);
            }

            return;
        }

        bool first = true;
        foreach (var item in value)
        {
            element.Write(item, first ? rep : repLevel, d + 1);
            first = false;
        }

        if (first)
        {
            element.WriteNull(rep, d);
        }
    }

    public override void WriteNull(int rep, int def) => element.WriteNull(rep, def);
}

/// <summary>MAP: <c>&lt;name&gt; (MAP) { repeated group key_value { required key; value } }</c>.</summary>
internal sealed class MapWriter<TMap, TKey, TValue>(string path, bool nullable, int repLevel, ValueWriter<TKey> key, ValueWriter<TValue> valueWriter)
    : ValueWriter<TMap>(path)
    where TMap : IEnumerable<KeyValuePair<TKey, TValue>>?
    where TKey : notnull
{
    public override void Write(TMap value, int rep, int def)
    {
        if (value is null)
        {
            if (!nullable)
            {
                throw NullInRequired();
            }

            WriteNull(rep, def);
            return;
        }

        int d = nullable ? def + 1 : def;
        bool first = true;
        if (value is Dictionary<TKey, TValue> dict)
        {
            foreach (var kv in dict)
            {
                Entry(kv, first ? rep : repLevel, d + 1);
                first = false;
            }
        }
        else
        {
            foreach (var kv in value)
            {
                Entry(kv, first ? rep : repLevel, d + 1);
                first = false;
            }
        }

        if (first)
        {
            WriteNull(rep, d);
        }
    }

    private void Entry(KeyValuePair<TKey, TValue> kv, int rep, int def)
    {
        key.Write(kv.Key, rep, def);
        valueWriter.Write(kv.Value, rep, def);
    }

    public override void WriteNull(int rep, int def)
    {
        key.WriteNull(rep, def);
        valueWriter.WriteNull(rep, def);
    }
}

/// <summary>Writes a dynamic row's boxed value into a leaf; the value must have the column's .NET type.</summary>
internal sealed class BoxedLeaf<T>(string path, bool nullable, LeafAppender<T> appender, Func<object, object?>? convert) : ValueWriter<object?>(path)
{
    private readonly ColumnWriter _column = appender.Column;

    public override void Write(object? value, int rep, int def)
    {
        if (value is null)
        {
            if (!nullable)
            {
                throw NullInRequired();
            }

            _column.Level(rep, def);
            return;
        }

        T typed;
        if (value is T t)
        {
            typed = t;
        }
        else if (convert?.Invoke(value) is T converted)
        {
            typed = converted;
        }
        else
        {
            throw new ParquetWriteException($"Column '{Path}' holds {typeof(T).Name} values, but the row has a {value.GetType().Name} ({value}).");
        }

        appender.Append(typed);
        _column.Level(rep, nullable ? def + 1 : def);
    }

    public override void WriteNull(int rep, int def) => _column.Level(rep, def);
}
