using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Kawa.Dataflow.Parquet.Schema;
using Kawa.Dataflow.Parquet.Writing;

namespace Kawa.Dataflow.Parquet.Sink;

/// <summary>A row of a dynamic-schema sink: the columns (declared at run time) and one value per column.</summary>
/// <param name="Schema">The row's schema; a different schema in the same partition starts a new file.</param>
/// <param name="Values">One value per column of <paramref name="Schema"/>, in order.</param>
public readonly record struct DynamicRow(ParquetSchema Schema, object?[] Values);

/// <summary>Turns messages into rows and opens format writers: the typed and the dynamic shape of the sink.</summary>
internal interface IRowFormat<T>
{
    /// <summary>The schema fingerprint of the file <paramref name="message"/> belongs in (same fingerprint, same file).</summary>
    /// <param name="message">The message.</param>
    /// <param name="prepared">What finding the fingerprint already computed for the row (the dynamic row's values), handed
    /// back to <see cref="IRowFileWriter{T}.WriteAsync"/> so a message is mapped once, not twice; <see langword="null"/> if nothing.</param>
    string Fingerprint(Message<T> message, out object? prepared);

    /// <summary>Opens the format writer of a new file whose rows have <paramref name="fingerprint"/>, the first being <paramref name="first"/>.</summary>
    IRowFileWriter<T> Open(Stream stream, string fingerprint, Message<T> first, ParquetWriterOptions options);
}

/// <summary>One open file's format writer: buffers a row group, writes it out, completes the footer.</summary>
internal interface IRowFileWriter<T>
{
    long BufferedBytes { get; }

    long EstimatedSize { get; }

    long RowCount { get; }

    int BufferedRows { get; }

    /// <summary>Buffers rows; <paramref name="prepared"/> holds, per row, what <see cref="IRowFormat{T}.Fingerprint"/> prepared.</summary>
    ValueTask WriteAsync(IReadOnlyList<Message<T>> rows, IReadOnlyList<object?> prepared, CancellationToken cancellationToken);

    ValueTask FlushRowGroupAsync(CancellationToken cancellationToken);

    ValueTask CompleteAsync(CancellationToken cancellationToken);
}

internal sealed class TypedRowFormat<T, TRow>(Func<Message<T>, TRow> selector) : IRowFormat<T>
{
    private readonly string _fingerprint = SchemaFingerprint.Of(ParquetSchema.FromType<TRow>());

    public string Fingerprint(Message<T> message, out object? prepared)
    {
        prepared = null;
        return _fingerprint;
    }

    public IRowFileWriter<T> Open(Stream stream, string fingerprint, Message<T> first, ParquetWriterOptions options) => new Writer(new ParquetWriter<TRow>(stream, options, leaveOpen: true), selector);

    private sealed class Writer(ParquetWriter<TRow> writer, Func<Message<T>, TRow> selector) : IRowFileWriter<T>
    {
        private readonly List<TRow> _rows = [];

        public long BufferedBytes => writer.EstimatedSize - writer.Position;

        public long EstimatedSize => writer.EstimatedSize;

        public long RowCount => writer.RowCount;

        public int BufferedRows => writer.BufferedRows;

        public async ValueTask WriteAsync(IReadOnlyList<Message<T>> rows, IReadOnlyList<object?> prepared, CancellationToken cancellationToken)
        {
            _rows.Clear();
            foreach (var row in rows)
            {
                _rows.Add(selector(row));
            }

            try
            {
                await writer.WriteAsync(_rows, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _rows.Clear();
            }
        }

        public ValueTask FlushRowGroupAsync(CancellationToken cancellationToken) => writer.FlushRowGroupAsync(cancellationToken);

        public ValueTask CompleteAsync(CancellationToken cancellationToken) => writer.CompleteAsync(cancellationToken);
    }
}

internal sealed class DynamicRowFormat<T>(Func<Message<T>, DynamicRow> selector) : IRowFormat<T>
{
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<ParquetSchema, string> _fingerprints = [];

    // The schema of each fingerprint seen, so opening a file does not map its first row again (a selector may count what
    // it maps, as the daemon's unmapped-field count does).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ParquetSchema> _schemas = new(StringComparer.Ordinal);

    public string Fingerprint(Message<T> message, out object? prepared)
    {
        // The selector maps every column (the daemon's whole per-row conversion): keep the values for WriteAsync.
        var row = selector(message);
        var schema = row.Schema ?? throw new InvalidOperationException("The dynamic row selector returned a row without a schema.");
        prepared = row.Values;
        var fingerprint = _fingerprints.GetValue(schema, SchemaFingerprint.Of);
        _schemas.TryAdd(fingerprint, schema);
        return fingerprint;
    }

    public IRowFileWriter<T> Open(Stream stream, string fingerprint, Message<T> first, ParquetWriterOptions options) =>
        new Writer(new ParquetRowWriter(stream, _schemas.TryGetValue(fingerprint, out var schema) ? schema : selector(first).Schema, options, leaveOpen: true), selector);

    private sealed class Writer(ParquetRowWriter writer, Func<Message<T>, DynamicRow> selector) : IRowFileWriter<T>
    {
        private readonly List<object?[]> _rows = [];

        public long BufferedBytes => writer.EstimatedSize - writer.Position;

        public long EstimatedSize => writer.EstimatedSize;

        public long RowCount => writer.RowCount;

        public int BufferedRows => writer.BufferedRows;

        public async ValueTask WriteAsync(IReadOnlyList<Message<T>> rows, IReadOnlyList<object?> prepared, CancellationToken cancellationToken)
        {
            _rows.Clear();
            for (var i = 0; i < rows.Count; i++)
            {
                _rows.Add(i < prepared.Count && prepared[i] is object?[] values ? values : selector(rows[i]).Values);
            }

            try
            {
                await writer.WriteAsync(_rows, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _rows.Clear();
            }
        }

        public ValueTask FlushRowGroupAsync(CancellationToken cancellationToken) => writer.FlushRowGroupAsync(cancellationToken);

        public ValueTask CompleteAsync(CancellationToken cancellationToken) => writer.CompleteAsync(cancellationToken);
    }
}

/// <summary>A stable fingerprint of a schema: SHA-256 over a canonical description of every field.</summary>
public static class SchemaFingerprint
{
    /// <summary>The fingerprint of <paramref name="schema"/> (lowercase hex, 64 characters): equal for equal column
    /// names, types, nullability and nesting, whatever the CLR type they came from.</summary>
    /// <param name="schema">The schema.</param>
    public static string Of(ParquetSchema schema)
    {
        ArgumentNullException.ThrowIfNull(schema);
        var text = new StringBuilder();
        foreach (var field in schema.Fields)
        {
            Describe(field, text);
        }

        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    private static void Describe(ParquetField field, StringBuilder text)
    {
        text.Append(field.Name).Append(':').Append(field.Kind.ToString()).Append(':').Append(field.ValueType.ToString())
            .Append(':').Append(field.IsNullable ? '?' : '!')
            .Append(':').Append(field.DecimalPrecision.ToString(CultureInfo.InvariantCulture)).Append(',').Append(field.DecimalScale.ToString(CultureInfo.InvariantCulture))
            .Append(':').Append(field.TimestampUnit.ToString()).Append('(');
        foreach (var child in field.Children)
        {
            Describe(child, text);
        }

        text.Append(");");
    }
}
