using System.Text.RegularExpressions;
using Kawa.Dataflow.Cli.Events;
using Kawa.Dataflow.Cli.Handlers;
using Kawa.Dataflow.Cli.Templates;

namespace Kawa.Dataflow.Cli.Configuration;

/// <summary>
/// The semantic checks that follow binding: required values, ranges, allowed values, cross-field rules and the fields
/// that templates reference. Every problem is reported, each at its path.
/// </summary>
internal static partial class ConfigValidator
{
    // How long the Parquet sink's batching holds a message before its file: kawa uses the batching defaults.
    private static readonly TimeSpan SinkBatchAge = new Kawa.Dataflow.BatchingOptions<object>().MaxBatchAge;

    private static readonly string[] s_deliverPolicies = ["all", "last", "new", "lastPerSubject", "byStartSequence", "byStartTime"];
    private static readonly string[] s_fileModes = ["read", "follow"];
    private static readonly string[] s_lineFormats = ["lines", "ndjson"];
    private static readonly string[] s_parseFormats = ["json", "combined", "regex"];
    private static readonly string[] s_policies = ["fatal", "retry", "nack", "deadLetter", "skip"];
    private static readonly string[] s_thenPolicies = ["fatal", "nack", "deadLetter", "skip"];
    private static readonly string[] s_matchModes = ["all", "any"];
    private static readonly string[] s_ops = ["==", "!=", "<", "<=", ">", ">=", "contains", "startsWith", "exists"];
    private static readonly string[] s_fieldTypes = ["string", "long", "double", "bool", "timestamp"];
    private static readonly string[] s_columnTypes = ["string", "long", "int", "double", "bool", "timestamp", "json", "binary"];
    private static readonly string[] s_codecs = ["snappy", "gzip", "none"];

    /// <summary>The longest parquet <c>rollAge</c>: a week (the roll timer cannot wait past about 49 days).</summary>
    private static readonly TimeSpan MaxRollAge = TimeSpan.FromDays(7);
    private static readonly string[] s_stdoutFormats = ["json", "raw"];
    private static readonly string[] s_natsSchemes = ["nats", "tls", "ws", "wss"];

    /// <summary>The columns written when a Parquet destination lists none: name, type and source.</summary>
    public static readonly IReadOnlyList<(string Name, string Type, string Source)> DefaultParquetColumns =
    [
        ("received_at", "timestamp", MessageProperties.ReceivedAt),
        ("subject", "string", MessageProperties.Subject),
        ("sequence", "long", MessageProperties.Sequence),
        ("key", "string", MessageProperties.Key),
        ("payload", "binary", MessageProperties.Raw),
    ];

    /// <summary>Validates bound options, adding every problem to <paramref name="errors"/>.</summary>
    /// <param name="options">The bound options.</param>
    /// <param name="errors">Where problems go.</param>
    /// <param name="baseDirectory">What relative file paths are relative to (existence checks).</param>
    public static void Validate(KawaOptions options, ConfigErrors errors, string baseDirectory)
    {
        if (options.Metrics.Port is < 0 or > 65535)
        {
            errors.Add("metrics.port", $"must be between 0 and 65535 (0 disables metrics), got {options.Metrics.Port}");
        }

        var pipeline = options.Pipeline;
        if (pipeline is null)
        {
            Missing(errors, "pipeline");
            return;
        }

        new PipelineChecks(pipeline, errors, baseDirectory).Run();
    }

    private static void Missing(ConfigErrors errors, string path)
    {
        if (!errors.HasAt(path))
        {
            errors.Add(path, "missing required value");
        }
    }

    private static bool OneOf(ConfigErrors errors, string path, string? value, string[] allowed, bool required = true)
    {
        if (string.IsNullOrEmpty(value))
        {
            if (required)
            {
                errors.Add(path, $"missing required value (expected one of: {string.Join(", ", allowed)})");
            }

            return false;
        }

        if (Array.Exists(allowed, a => string.Equals(a, value, StringComparison.Ordinal)))
        {
            return true;
        }

        errors.Add(path, $"unknown value '{value}' (expected one of: {string.Join(", ", allowed)}){Suggest.DidYouMean(value, allowed)}");
        return false;
    }

    private static void Range(ConfigErrors errors, string path, long value, long min, long max)
    {
        if (value < min || value > max)
        {
            errors.Add(path, max == long.MaxValue ? $"must be at least {min}, got {value}" : $"must be between {min} and {max}, got {value}");
        }
    }

    private static void Positive(ConfigErrors errors, string path, TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            errors.Add(path, $"must be a positive duration, got {value:c}");
        }
    }

    [GeneratedRegex("^[A-Za-z0-9._-]+$")]
    private static partial Regex NameRegex();

    [GeneratedRegex("^[A-Za-z0-9_-]{1,48}$")]
    private static partial Regex InstanceIdRegex();

    private sealed class PipelineChecks(KawaPipelineOptions pipeline, ConfigErrors errors, string baseDirectory)
    {
        private readonly string _baseDirectory = baseDirectory;
        private const string P = "pipeline";
        private readonly KawaPipelineOptions _pipeline = pipeline;
        private readonly ConfigErrors _errors = errors;

        // Fields the handlers are known to produce, in pipeline order; null once a json parse makes them open-ended.
        private HashSet<string>? _knownFields = new(StringComparer.Ordinal);

        private bool Exists(string path) => File.Exists(Path.Combine(_baseDirectory, path));

        public void Run()
        {
            if (string.IsNullOrWhiteSpace(_pipeline.Name))
            {
                Missing(_errors, $"{P}.name");
            }
            else if (!NameRegex().IsMatch(_pipeline.Name))
            {
                _errors.Add($"{P}.name", $"may contain only letters, digits, '.', '_' and '-', got '{_pipeline.Name}'");
            }

            CheckSource();
            CheckHandlers();
            CheckDestination(_pipeline.Destination, $"{P}.destination", isDeadLetter: false);
            if (_pipeline.DeadLetter is not null)
            {
                CheckDestination(_pipeline.DeadLetter, $"{P}.deadLetter", isDeadLetter: true);
            }

            CheckLimits();
            CheckCrossStage();
        }

        private void CheckSource()
        {
            const string path = $"{P}.source";
            switch (_pipeline.Source)
            {
                case null:
                    Missing(_errors, path);
                    break;
                case NatsJetStreamSourceOptions js:
                    CheckConnection(js, path);
                    if (string.IsNullOrWhiteSpace(js.Stream))
                    {
                        Missing(_errors, $"{path}.stream");
                    }

                    if (string.IsNullOrWhiteSpace(js.Durable))
                    {
                        _errors.Add($"{path}.durable", "missing required value (a durable consumer is what lets a restart resume where it stopped)");
                    }

                    for (var i = 0; i < js.FilterSubjects.Count; i++)
                    {
                        CheckSubject(js.FilterSubjects[i], $"{path}.filterSubjects[{i}]", wildcards: true);
                    }

                    if (OneOf(_errors, $"{path}.deliverPolicy", js.DeliverPolicy, s_deliverPolicies))
                    {
                        if (js.DeliverPolicy == "byStartSequence" && js.OptStartSeq is null)
                        {
                            _errors.Add($"{path}.optStartSeq", "missing required value (deliverPolicy byStartSequence needs it)");
                        }
                        else if (js.DeliverPolicy == "byStartSequence" && js.OptStartSeq == 0)
                        {
                            _errors.Add($"{path}.optStartSeq", "must be at least 1 (stream sequences start at 1), got 0");
                        }
                        else if (js.DeliverPolicy != "byStartSequence" && js.OptStartSeq is not null)
                        {
                            _errors.Add($"{path}.optStartSeq", $"only applies with deliverPolicy byStartSequence (the policy is {js.DeliverPolicy})");
                        }

                        if (js.DeliverPolicy == "lastPerSubject" && js.FilterSubjects.Count == 0)
                        {
                            _errors.Add($"{path}.filterSubjects", "deliverPolicy lastPerSubject needs at least one filter subject (a wildcard such as 'orders.>' covers every subject)");
                        }

                        if (js.DeliverPolicy == "byStartTime" && js.OptStartTime is null)
                        {
                            _errors.Add($"{path}.optStartTime", "missing required value (deliverPolicy byStartTime needs it)");
                        }
                        else if (js.DeliverPolicy != "byStartTime" && js.OptStartTime is not null)
                        {
                            _errors.Add($"{path}.optStartTime", $"only applies with deliverPolicy byStartTime (the policy is {js.DeliverPolicy})");
                        }
                    }

                    Positive(_errors, $"{path}.ackWait", js.AckWait);
                    Range(_errors, $"{path}.maxAckPending", js.MaxAckPending, 1, 1_000_000);
                    Range(_errors, $"{path}.prefetch", js.Prefetch, 1, 100_000);
                    if (js.Prefetch > js.MaxAckPending && js.MaxAckPending >= 1)
                    {
                        _errors.Add($"{path}.prefetch", $"must not exceed maxAckPending ({js.MaxAckPending}): the server would never deliver the rest, got {js.Prefetch}");
                    }

                    break;
                case NatsSourceOptions nats:
                    CheckConnection(nats, path);
                    _errors.Warn($"{path}.type", "core NATS has no acks: messages in flight when kawa stops or fails are lost (at-most-once); use nats-jetstream for at-least-once");
                    if (string.IsNullOrWhiteSpace(nats.Subject))
                    {
                        Missing(_errors, $"{path}.subject");
                    }
                    else
                    {
                        CheckSubject(nats.Subject, $"{path}.subject", wildcards: true);
                    }

                    break;
                case FileSourceOptions file:
                    if (string.IsNullOrWhiteSpace(file.Path))
                    {
                        Missing(_errors, $"{path}.path");
                    }
                    else if (file.Mode == "read" && !Exists(file.Path))
                    {
                        _errors.Add($"{path}.path", $"file not found: '{file.Path}'");
                    }

                    if (OneOf(_errors, $"{path}.mode", file.Mode, s_fileModes) && file.Mode == "follow" && string.IsNullOrWhiteSpace(file.OffsetFile))
                    {
                        _errors.Add($"{path}.offsetFile", "missing required value (mode follow saves its position there, or a restart would re-read or skip lines)");
                    }

                    OneOf(_errors, $"{path}.format", file.Format, s_lineFormats);
                    if (file.Format == "ndjson")
                    {
                        _knownFields = null; // The source parses each line's JSON: any field may appear.
                    }

                    break;
                case StdinSourceOptions stdin:
                    OneOf(_errors, $"{path}.format", stdin.Format, s_lineFormats);
                    if (stdin.Format == "ndjson")
                    {
                        _knownFields = null;
                    }

                    break;
            }
        }

        private void CheckHandlers()
        {
            var names = new Dictionary<string, int>(StringComparer.Ordinal);
            for (var i = 0; i < _pipeline.Handlers.Count; i++)
            {
                var path = $"{P}.handlers[{i}]";
                var handler = _pipeline.Handlers[i];
                if (handler is null)
                {
                    Missing(_errors, path);
                    _knownFields = null; // Unknown handler: stop judging which fields exist.
                    continue;
                }

                var name = handler.Name ?? $"{handler.Type}-{i}";
                if (!NameRegex().IsMatch(name))
                {
                    _errors.Add($"{path}.name", $"may contain only letters, digits, '.', '_' and '-', got '{name}'");
                }
                else if (names.TryGetValue(name, out var first))
                {
                    _errors.Add($"{path}.name", $"duplicate handler name '{name}' (also pipeline.handlers[{first}])");
                }
                else
                {
                    names[name] = i;
                }

                if (handler is ParseHandlerOptions && handler.ErrorPolicy.Type == "retry")
                {
                    _errors.Warn($"{path}.errorPolicy.type", "retrying a parse error never helps (the same bytes fail the same way); use deadLetter or skip");
                }

                if (!handler.Ordered && handler.KeyOrdered)
                {
                    _errors.Warn($"{path}.ordered", "false has no effect with keyOrdered: true (a key-ordered stage keeps only each key's order, and never runs to completion); remove one of the two");
                }

                Range(_errors, $"{path}.parallelism", handler.Parallelism, 1, 1024);
                Range(_errors, $"{path}.capacity", handler.Capacity, 1, 1_000_000);
                if (handler.DeadLetter is not null)
                {
                    CheckDestination(handler.DeadLetter, $"{path}.deadLetter", isDeadLetter: true);
                }

                CheckErrorPolicy(handler.ErrorPolicy, $"{path}.errorPolicy", hasDeadLetter: handler.DeadLetter is not null || _pipeline.DeadLetter is not null);

                switch (handler)
                {
                    case ParseHandlerOptions parse:
                        CheckParse(parse, path);
                        break;
                    case FilterHandlerOptions filter:
                        CheckFilter(filter, path);
                        break;
                    case FieldsHandlerOptions fields:
                        CheckFields(fields, path);
                        break;
                }
            }
        }

        private void CheckErrorPolicy(ErrorPolicyOptions policy, string path, bool hasDeadLetter)
        {
            if (!OneOf(_errors, $"{path}.type", policy.Type, s_policies))
            {
                return;
            }

            if (policy.Type == "retry")
            {
                Range(_errors, $"{path}.maxAttempts", policy.MaxAttempts, 1, 100);
                if (policy.InitialDelay < TimeSpan.Zero)
                {
                    _errors.Add($"{path}.initialDelay", $"must not be negative, got {policy.InitialDelay:c}");
                }

                if (policy.MaxDelay < policy.InitialDelay)
                {
                    _errors.Add($"{path}.maxDelay", $"must be at least initialDelay ({policy.InitialDelay:c}), got {policy.MaxDelay:c}");
                }

                OneOf(_errors, $"{path}.then", policy.Then, s_thenPolicies);
            }

            if (policy.NackDelay < TimeSpan.Zero)
            {
                _errors.Add($"{path}.nackDelay", $"must not be negative, got {policy.NackDelay:c}");
            }

            var deadLetters = policy.Type == "deadLetter" || (policy.Type == "retry" && policy.Then == "deadLetter");
            if (deadLetters && !hasDeadLetter)
            {
                _errors.Add(policy.Type == "deadLetter" ? $"{path}.type" : $"{path}.then", "'deadLetter' needs pipeline.deadLetter (a destination) to be configured, or the stage's own deadLetter");
            }
        }

        private void CheckParse(ParseHandlerOptions parse, string path)
        {
            if (!OneOf(_errors, $"{path}.format", parse.Format, s_parseFormats))
            {
                _knownFields = null;
                return;
            }

            if (parse.Format != "regex")
            {
                if (parse.Pattern is not null)
                {
                    _errors.Add($"{path}.pattern", $"only applies to format regex, not {parse.Format}");
                }

                if (parse.Types.Count > 0)
                {
                    _errors.Add($"{path}.types", $"only applies to format regex, not {parse.Format}");
                }

                if (parse.Format == "combined")
                {
                    _knownFields?.UnionWith(CombinedLogFields.All);
                }
                else
                {
                    _knownFields = null; // json: any field may appear.
                }

                return;
            }

            if (string.IsNullOrEmpty(parse.Pattern))
            {
                _errors.Add($"{path}.pattern", "missing required value (format regex needs a pattern with named groups)");
                return;
            }

            Regex regex;
            try
            {
                regex = new Regex(parse.Pattern, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
            }
            catch (ArgumentException ex)
            {
                _errors.Add($"{path}.pattern", $"invalid regular expression: {ex.Message}");
                return;
            }

            var groups = regex.GetGroupNames().Where(g => !int.TryParse(g, out _)).ToList();
            if (groups.Count == 0)
            {
                _errors.Add($"{path}.pattern", "has no named groups ((?<name>...)), so it would produce no fields");
            }

            foreach (var (group, type) in parse.Types)
            {
                if (!groups.Contains(group))
                {
                    _errors.Add($"{path}.types.{group}", $"no group named '{group}' in the pattern{Suggest.DidYouMean(group, groups)}");
                }

                OneOf(_errors, $"{path}.types.{group}", type, s_fieldTypes);
            }

            _knownFields?.UnionWith(groups);
        }

        private void CheckFilter(FilterHandlerOptions filter, string path)
        {
            OneOf(_errors, $"{path}.match", filter.Match, s_matchModes);
            if (filter.Conditions.Count == 0)
            {
                _errors.Add($"{path}.conditions", "missing required value (at least one condition)");
            }

            for (var i = 0; i < filter.Conditions.Count; i++)
            {
                var cpath = $"{path}.conditions[{i}]";
                var condition = filter.Conditions[i];
                if (condition is null)
                {
                    Missing(_errors, cpath);
                    continue;
                }

                if (string.IsNullOrWhiteSpace(condition.Field))
                {
                    Missing(_errors, $"{cpath}.field");
                }
                else
                {
                    CheckFieldKnown(condition.Field, $"{cpath}.field");
                }

                if (OneOf(_errors, $"{cpath}.op", condition.Op, s_ops))
                {
                    if (condition.Op == "exists" && condition.Value is not null)
                    {
                        _errors.Add($"{cpath}.value", "op 'exists' takes no value");
                    }
                    else if (condition.Op != "exists" && condition.Value is null)
                    {
                        _errors.Add($"{cpath}.value", $"missing required value (op '{condition.Op}' compares with it)");
                    }
                }
            }
        }

        private void CheckFields(FieldsHandlerOptions fields, string path)
        {
            if (fields.Rename.Count == 0 && fields.Drop.Count == 0 && fields.Add.Count == 0 && fields.IngestTime is null && fields.HostName is null)
            {
                _errors.Add(path, "does nothing: set at least one of rename, drop, add, ingestTime, hostName");
            }

            foreach (var (from, to) in fields.Rename)
            {
                if (string.IsNullOrWhiteSpace(to))
                {
                    _errors.Add($"{path}.rename.{from}", "missing required value (the new name)");
                    continue;
                }

                CheckFieldKnown(from, $"{path}.rename.{from}");
                if (_knownFields is not null && _knownFields.Remove(from))
                {
                    _knownFields.Add(to);
                }
            }

            for (var i = 0; i < fields.Drop.Count; i++)
            {
                if (string.IsNullOrWhiteSpace(fields.Drop[i]))
                {
                    Missing(_errors, $"{path}.drop[{i}]");
                    continue;
                }

                CheckFieldKnown(fields.Drop[i], $"{path}.drop[{i}]");
                _knownFields?.Remove(fields.Drop[i]);
            }

            _knownFields?.UnionWith(fields.Add.Keys);
            foreach (var (key, field) in new[] { ("ingestTime", fields.IngestTime), ("hostName", fields.HostName) })
            {
                if (field is null)
                {
                    continue;
                }

                if (string.IsNullOrWhiteSpace(field))
                {
                    _errors.Add($"{path}.{key}", "must name the field to set");
                    continue;
                }

                _knownFields?.Add(field);
            }
        }

        // Only judged while every earlier handler has a known output (no json parse): then a reference to a field
        // nothing produces is certainly a mistake. With no parse handler at all, fields cannot exist either.
        private void CheckFieldKnown(string field, string path)
        {
            if (_knownFields is not null && !field.StartsWith('$') && !_knownFields.Contains(field))
            {
                _errors.Add(path, $"unknown field '{field}' (no earlier handler produces it){Suggest.DidYouMean(field, _knownFields)}");
            }
        }

        private void CheckDestination(KawaDestinationOptions? destination, string path, bool isDeadLetter)
        {
            switch (destination)
            {
                case null:
                    Missing(_errors, path);
                    break;
                case ParquetDestinationOptions parquet:
                    CheckParquet(parquet, path, isDeadLetter);
                    break;
                case NatsJetStreamDestinationOptions js:
                    CheckConnection(js, path);
                    if (string.IsNullOrWhiteSpace(js.SubjectTemplate))
                    {
                        Missing(_errors, $"{path}.subjectTemplate");
                    }
                    else
                    {
                        CheckTemplate(js.SubjectTemplate, $"{path}.subjectTemplate", isDeadLetter ? null : _knownFields, columns: null);
                    }

                    break;
                case StdoutDestinationOptions stdout:
                    OneOf(_errors, $"{path}.format", stdout.Format, s_stdoutFormats);
                    break;
            }
        }

        private void CheckParquet(ParquetDestinationOptions parquet, string path, bool isDeadLetter)
        {
            if (string.IsNullOrWhiteSpace(parquet.Path))
            {
                Missing(_errors, $"{path}.path");
            }
            else if (parquet.Path.StartsWith("s3://", StringComparison.OrdinalIgnoreCase))
            {
                var rest = parquet.Path["s3://".Length..];
                if (rest.Length == 0 || rest[0] == '/')
                {
                    _errors.Add($"{path}.path", $"missing the bucket: expected s3://bucket/prefix, got '{parquet.Path}'");
                }

                if (parquet.S3 is null || (string.IsNullOrWhiteSpace(parquet.S3.Region) && string.IsNullOrWhiteSpace(parquet.S3.Endpoint)))
                {
                    _errors.Add($"{path}.s3", "an s3:// path needs s3.region or s3.endpoint");
                }
            }
            else if (parquet.Path.Contains("://", StringComparison.Ordinal))
            {
                _errors.Add($"{path}.path", $"expected a local directory or s3://bucket/prefix, got '{Secrets.MaskUrl(parquet.Path)}'");
            }
            else if (parquet.S3 is not null)
            {
                _errors.Add($"{path}.s3", "only applies to an s3:// path");
            }

            if (parquet.S3 is { } s3)
            {
                if (s3.Endpoint is not null && !(Uri.TryCreate(s3.Endpoint, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"))
                {
                    _errors.Add($"{path}.s3.endpoint", $"expected an http:// or https:// URL, got '{Secrets.MaskUrl(s3.Endpoint)}'");
                }

                if (string.IsNullOrEmpty(s3.AccessKey) != string.IsNullOrEmpty(s3.SecretKey))
                {
                    _errors.Add($"{path}.s3", "accessKey and secretKey go together (or leave both out for the default credential chain)");
                }
            }

            var columnNames = new HashSet<string>(StringComparer.Ordinal);
            var columnFields = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < parquet.Columns.Count; i++)
            {
                var cpath = $"{path}.columns[{i}]";
                var column = parquet.Columns[i];
                if (column is null)
                {
                    Missing(_errors, cpath);
                    continue;
                }

                if (string.IsNullOrWhiteSpace(column.Name))
                {
                    Missing(_errors, $"{cpath}.name");
                }
                else if (!columnNames.Add(column.Name))
                {
                    _errors.Add($"{cpath}.name", $"duplicate column '{column.Name}'");
                }

                OneOf(_errors, $"{cpath}.type", column.Type, s_columnTypes);
                var source = column.Source ?? column.Name;
                if (source is null)
                {
                    continue;
                }

                columnFields.Add(source);
                if (source.StartsWith('$'))
                {
                    if (!MessageProperties.All.Contains(source))
                    {
                        _errors.Add($"{cpath}.source", $"unknown message property '{source}' (expected one of: {string.Join(", ", MessageProperties.All)}){Suggest.DidYouMean(source, MessageProperties.All)}");
                    }
                }
                else if (!isDeadLetter)
                {
                    CheckFieldKnown(source, $"{cpath}.{(column.Source is null ? "name" : "source")}");
                }
            }

            if (parquet.ExtraColumn is not null)
            {
                if (string.IsNullOrWhiteSpace(parquet.ExtraColumn))
                {
                    _errors.Add($"{path}.extraColumn", "must name a column, or be left out to count unmapped fields instead");
                }
                else if (columnNames.Contains(parquet.ExtraColumn))
                {
                    _errors.Add($"{path}.extraColumn", $"'{parquet.ExtraColumn}' is already a column");
                }
            }

            if (parquet.PartitionBy is not null)
            {
                CheckTemplate(parquet.PartitionBy, $"{path}.partitionBy", isDeadLetter ? null : _knownFields, parquet.Columns.Count > 0 ? columnFields : null);
            }

            OneOf(_errors, $"{path}.codec", parquet.Codec, s_codecs);
            Range(_errors, $"{path}.rollRows", parquet.RollRows, 1, long.MaxValue);
            Range(_errors, $"{path}.rollBytes", parquet.RollBytes, 1024, long.MaxValue);
            Positive(_errors, $"{path}.rollAge", parquet.RollAge);
            if (parquet.RollAge > MaxRollAge)
            {
                // The lake's max file age is derived from it (see ParquetEventDestination.LakeMaxFileAge).
                _errors.Add($"{path}.rollAge", $"must be at most {MaxRollAge:c} (the lake's cleanup age is derived from it); got {parquet.RollAge:c}");
            }
            Range(_errors, $"{path}.rowGroupRows", parquet.RowGroupRows, 1, int.MaxValue);
            if (parquet.InstanceId is not null && !InstanceIdRegex().IsMatch(parquet.InstanceId))
            {
                _errors.Add($"{path}.instanceId", $"must be 1 to 48 of A-Z, a-z, 0-9, '_' and '-', got '{parquet.InstanceId}'");
            }
        }

        // A placeholder must name a field the pipeline is known to produce, or a column's source, or a message
        // property. When a json parse makes fields open-ended, only the declared columns (if any) can be judged.
        private void CheckTemplate(string text, string path, HashSet<string>? knownFields, HashSet<string>? columns)
        {
            FieldTemplate template;
            try
            {
                template = FieldTemplate.Parse(text);
            }
            catch (FormatException ex)
            {
                _errors.Add(path, $"invalid template: {ex.Message}");
                return;
            }

            foreach (var (field, format) in template.Placeholders)
            {
                if (field.StartsWith('$'))
                {
                    if (!MessageProperties.All.Contains(field))
                    {
                        _errors.Add(path, $"unknown message property '{field}' (expected one of: {string.Join(", ", MessageProperties.All)})");
                    }
                }
                else if ((knownFields is not null || columns is not null)
                    && !(knownFields?.Contains(field) ?? false) && !(columns?.Contains(field) ?? false))
                {
                    var candidates = (knownFields ?? []).Concat(columns ?? []);
                    _errors.Add(path, $"unknown field '{field}'{Suggest.DidYouMean(field, candidates)}");
                }

                if (format is not null && FieldTemplate.CheckFormat(format) is { } reason)
                {
                    _errors.Add(path, $"invalid format '{format}' for field '{field}': {reason}");
                }
            }
        }

        private void CheckConnection(INatsConnectionOptions connection, string path)
        {
            if (connection.Servers.Count == 0)
            {
                _errors.Add($"{path}.servers", "missing required value (at least one server URL)");
            }

            for (var i = 0; i < connection.Servers.Count; i++)
            {
                var server = connection.Servers[i];
                if (!Uri.TryCreate(server, UriKind.Absolute, out var uri) || !s_natsSchemes.Contains(uri.Scheme) || string.IsNullOrEmpty(uri.Host))
                {
                    _errors.Add($"{path}.servers[{i}]", $"expected a URL like nats://host:4222 (schemes: {string.Join(", ", s_natsSchemes)}), got '{Secrets.MaskUrl(server ?? string.Empty)}'");
                }
            }

            if (connection.Auth is { } auth)
            {
                var methods = new List<string>();
                if (!string.IsNullOrEmpty(auth.Token))
                {
                    methods.Add("token");
                }

                if (!string.IsNullOrEmpty(auth.User) || !string.IsNullOrEmpty(auth.Password))
                {
                    methods.Add("user/password");
                    if (string.IsNullOrEmpty(auth.User))
                    {
                        Missing(_errors, $"{path}.auth.user");
                    }

                    if (string.IsNullOrEmpty(auth.Password))
                    {
                        _errors.Add($"{path}.auth.password", "missing required value (user needs a password)");
                    }
                }

                if (!string.IsNullOrEmpty(auth.Nkey))
                {
                    methods.Add("nkey");
                    if (!auth.Nkey.StartsWith("SU", StringComparison.Ordinal))
                    {
                        _errors.Add($"{path}.auth.nkey", "expected a user NKey seed (starts with 'SU'); the value is not shown");
                    }
                }

                if (!string.IsNullOrEmpty(auth.CredsFile) || !string.IsNullOrEmpty(auth.Creds))
                {
                    methods.Add("creds");
                    if (!string.IsNullOrEmpty(auth.CredsFile) && !string.IsNullOrEmpty(auth.Creds))
                    {
                        _errors.Add($"{path}.auth.creds", "give either credsFile or creds, not both");
                    }
                    else if (!string.IsNullOrEmpty(auth.CredsFile) && !Exists(auth.CredsFile))
                    {
                        _errors.Add($"{path}.auth.credsFile", $"file not found: '{auth.CredsFile}'");
                    }
                    else if (!string.IsNullOrEmpty(auth.Creds))
                    {
                        try
                        {
                            Kawa.Dataflow.Nats.Auth.CredsFile.Parse(auth.Creds);
                        }
                        catch (FormatException ex)
                        {
                            // The parser's message describes the blocks, never their contents.
                            _errors.Add($"{path}.auth.creds", $"not the contents of a .creds file: {ex.Message} The value is not shown");
                        }
                    }
                }

                if (methods.Count > 1)
                {
                    _errors.Add($"{path}.auth", $"give one authentication method, got {string.Join(" and ", methods)}");
                }
            }

            if (connection.Tls is { } tls)
            {
                if (string.IsNullOrEmpty(tls.Cert) != string.IsNullOrEmpty(tls.Key))
                {
                    _errors.Add($"{path}.tls", "cert and key go together (mutual TLS needs both)");
                }

                foreach (var (key, file) in new[] { ("ca", tls.Ca), ("cert", tls.Cert), ("key", tls.Key) })
                {
                    if (!string.IsNullOrEmpty(file) && !Exists(file))
                    {
                        _errors.Add($"{path}.tls.{key}", $"file not found: '{file}'");
                    }
                }
            }
        }

        private void CheckSubject(string? subject, string path, bool wildcards)
        {
            if (string.IsNullOrWhiteSpace(subject))
            {
                Missing(_errors, path);
                return;
            }

            var tokens = subject.Split('.');
            for (var i = 0; i < tokens.Length; i++)
            {
                var token = tokens[i];
                if (token.Length == 0 || token.Any(char.IsWhiteSpace))
                {
                    _errors.Add(path, $"invalid subject '{subject}': empty token or whitespace");
                    return;
                }

                var wildcard = token is "*" || (token is ">" && i == tokens.Length - 1);
                if ((token.Contains('*', StringComparison.Ordinal) || token.Contains('>', StringComparison.Ordinal)) && (!wildcard || !wildcards))
                {
                    _errors.Add(path, $"invalid subject '{subject}': '*' must be a whole token and '>' the last token");
                    return;
                }
            }
        }

        private void CheckLimits()
        {
            const string path = $"{P}.limits";
            var limits = _pipeline.Limits;
            Range(_errors, $"{path}.maxInFlightMessages", limits.MaxInFlightMessages, 1, 10_000_000);
            Range(_errors, $"{path}.maxInFlightBytes", limits.MaxInFlightBytes, 1024, long.MaxValue);
            Positive(_errors, $"{path}.drainTimeout", limits.DrainTimeout);
            if (limits.DrainTimeout > TimeSpan.FromHours(1))
            {
                _errors.Add($"{path}.drainTimeout", $"must be at most 01:00:00, got {limits.DrainTimeout:c}");
            }
        }

        private void CheckCrossStage()
        {
            if (_pipeline.Source is not NatsJetStreamSourceOptions js)
            {
                return;
            }

            // Parquet acks at file commit: a file open longer than ackWait has its messages redelivered while it is
            // still being written, so every message would be written twice.
            var destinations = new List<(KawaDestinationOptions? Destination, string Path)> { (_pipeline.Destination, $"{P}.destination"), (_pipeline.DeadLetter, $"{P}.deadLetter") };
            for (var i = 0; i < _pipeline.Handlers.Count; i++)
            {
                destinations.Add((_pipeline.Handlers[i]?.DeadLetter, $"{P}.handlers[{i}].deadLetter"));
            }

            foreach (var (destination, path) in destinations)
            {
                // A message waits in its batch (the sink's default batch age) before its file opens: the library's
                // start-up check counts that too.
                if (destination is ParquetDestinationOptions parquet && parquet.RollAge > TimeSpan.Zero && js.AckWait > TimeSpan.Zero && parquet.RollAge + SinkBatchAge >= js.AckWait)
                {
                    _errors.Add($"{path}.rollAge", $"must be below pipeline.source.ackWait ({js.AckWait:c}) by more than the sink's batch age ({SinkBatchAge:c}): messages are acked only when the file is committed, so the server would redeliver them first; got {parquet.RollAge:c}");
                }
            }

            // A file's messages stay unacked until it commits; when the unacked window is full of them, the pipeline
            // commits what the sink holds (see docs/pipeline.md), so files are cut at the window, not at rollRows.
            var window = Math.Min(js.MaxAckPending, _pipeline.Limits.MaxInFlightMessages);
            if (_pipeline.Destination is ParquetDestinationOptions p && p.RollRows > window)
            {
                _errors.Warn($"{P}.destination.rollRows", $"files will be committed at about {window} rows, not rollRows ({p.RollRows}): a file's messages stay unacked until it commits, and at most {window} may be unacked at once (the smaller of limits.maxInFlightMessages and source.maxAckPending); raise both for larger files");
            }

            if (_pipeline.Limits.DrainTimeout >= js.AckWait && js.AckWait > TimeSpan.Zero)
            {
                _errors.Warn($"{P}.limits.drainTimeout", $"not below pipeline.source.ackWait ({js.AckWait:c}): the server may redeliver messages that are still being drained");
            }

            if (_pipeline.Limits.MaxInFlightMessages < js.Prefetch)
            {
                _errors.Add($"{P}.limits.maxInFlightMessages", $"must be at least pipeline.source.prefetch ({js.Prefetch}), got {_pipeline.Limits.MaxInFlightMessages}");
            }

            CheckMaxAckPending(js);
        }

        // The library's start-up check (NatsJetStreamSource.ValidateAgainst), by the same rule, before anything connects:
        // the daemon's pipeline holds at most limits.maxInFlightMessages messages unsettled (its MaxUnsettledMessages),
        // and the source has up to prefetch more delivered ahead. Above max_ack_pending the server, not the pipeline,
        // becomes the limit, and processes sharing the durable starve one another.
        private void CheckMaxAckPending(NatsJetStreamSourceOptions js)
        {
            var inFlight = _pipeline.Limits.MaxInFlightMessages;
            if (inFlight < 1 || js.Prefetch < 1 || js.MaxAckPending < 1 || js.Prefetch > js.MaxAckPending)
            {
                return; // Out of range, or the prefetch error above says it already.
            }

            var most = Kawa.Dataflow.Nats.Pipeline.NatsJetStreamSource.MostUnacked(inFlight, js.Prefetch);
            if (Kawa.Dataflow.Nats.Pipeline.NatsJetStreamSource.ExceedsMaxAckPending(most, js.MaxAckPending))
            {
                _errors.Add($"{P}.source.maxAckPending", $"must be at least pipeline.limits.maxInFlightMessages + pipeline.source.prefetch ({inFlight} + {js.Prefetch} = {most}), the most messages this process holds delivered and unacked, got {js.MaxAckPending}: raise pipeline.source.maxAckPending to {most} or more (times the processes sharing the durable), or lower pipeline.limits.maxInFlightMessages or pipeline.source.prefetch");
            }
        }
    }
}
