-- grain: one row per description_key in Bentley's error catalogue (description_key)
-- depends_on: error_catalog
-- A key in both catalogues takes its exporter entry (CONTRACT: exporter first, else connector).
with source as (
    select * from error_catalog
),

ranked as (
    select
        description_key,
        catalog,
        description,
        category,
        can_user_fix,
        -- an empty link is no link, as the API sends "" for most errors
        nullif(trim(kb_article_link), '') as kb_article_link
    from source
    where description_key is not null
    qualify row_number() over (
        partition by description_key
        order by case catalog when 'exporter' then 0 when 'connector' then 1 else 2 end, catalog
    ) = 1
)

select * from ranked
